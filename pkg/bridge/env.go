package bridge

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/nodebridge/nodebridge/pkg/ipam"
	"github.com/nodebridge/nodebridge/pkg/rules"
)

// validate checks the pod's environment; STATUS and GC pass an empty Pod, so
// only fields that are set are checked.
func (p Pod) validate() []error {
	var errs []error
	if p.ContainerID != "" {
		if err := rules.CheckName(p.ContainerID); err != nil {
			errs = append(errs, problemf(ErrEnv, "CNI_CONTAINERID %q: not a valid containerID: %w", p.ContainerID, err))
		}
	}
	if p.IfName != "" {
		if err := rules.CheckIfName(p.IfName); err != nil {
			errs = append(errs, problemf(ErrEnv, "CNI_IFNAME %q: not a valid interface name: %w", p.IfName, err))
		}
	}
	return errs
}

// envArgs are the CNI_ARGS keys nodebridge reads.
type envArgs struct {
	IPs []string // IP=, comma-separated
	MAC string   // MAC=
}

// parseEnvArgs reads CNI_ARGS, "K=V;K=V". Unknown keys are ignored: kubelet
// passes K8S_POD_* and IgnoreUnknown. A repeated key's last value wins, as in
// the reference.
func parseEnvArgs(s string) (envArgs, error) {
	var e envArgs
	if s == "" {
		return e, nil
	}
	var errs []error
	for pair := range strings.SplitSeq(s, ";") {
		k, v, ok := strings.Cut(pair, "=")
		switch {
		case !ok:
			errs = append(errs, problemf(ErrEnv, "CNI_ARGS %q: pair %q has no '='", s, pair))
		case k == "IP":
			e.IPs = slices.DeleteFunc(strings.Split(v, ","), func(ip string) bool { return ip == "" })
		case k == "MAC":
			e.MAC = v
		}
	}
	return e, errors.Join(errs...)
}

// resolveMAC sets c.MAC from CNI_ARGS MAC, args.cni.mac or runtimeConfig.mac:
// the last one present wins, as in the reference.
func (c *Config) resolveMAC(env string) error {
	kind, path, value := ErrEnv, "CNI_ARGS MAC", env
	if c.Args.CNI.MAC != "" {
		kind, path, value = ErrInvalid, "args.cni.mac", c.Args.CNI.MAC
	}
	if c.RuntimeConfig.MAC != "" {
		kind, path, value = ErrInvalid, "runtimeConfig.mac", c.RuntimeConfig.MAC
	}
	if value == "" {
		return nil
	}
	mac, err := net.ParseMAC(value)
	switch {
	case err != nil:
		// net.ParseMAC's message repeats the value; ours names the path too.
		return problemf(kind, "%s %q: not a MAC address", path, value)
	case len(mac) != 6:
		return problemf(kind, "%s %q: not a 6-byte Ethernet address", path, value)
	case mac[0]&1 == 1:
		return problemf(kind, "%s %q: multicast or broadcast, need a unicast address", path, value)
	case bytes.Equal(mac, make(net.HardwareAddr, 6)):
		return problemf(kind, "%s %q: all zeros", path, value)
	}
	c.MAC = mac
	return nil
}

// resolveRequested sets c.Requested from runtimeConfig.ips, args.cni.ips and
// CNI_ARGS IP, in that order, without duplicates.
func (c *Config) resolveRequested(env []string) []error {
	var errs []error
	add := func(kind error, path, s string) {
		a, err := ipam.ParseRequested(s)
		switch {
		case err != nil:
			// Its only complaint is "not an IP"; ours names the source as well.
			errs = append(errs, problemf(kind, "%s %q: not an IP", path, s))
		case !slices.Contains(c.Requested, a):
			c.Requested = append(c.Requested, a)
		}
	}
	for i, s := range c.RuntimeConfig.IPs {
		add(ErrInvalid, fmt.Sprintf("runtimeConfig.ips[%d]", i), s)
	}
	for i, s := range c.Args.CNI.IPs {
		add(ErrInvalid, fmt.Sprintf("args.cni.ips[%d]", i), s)
	}
	for _, s := range env {
		add(ErrEnv, "CNI_ARGS IP", s)
	}
	return errs
}
