package bridge

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"syscall"
	"time"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"
)

// dadPoll is how often waitDAD looks at the addresses; detection itself
// takes a second or more, so a finer poll gains nothing.
const dadPoll = 20 * time.Millisecond

func hasIPv6(ips []*current.IPConfig) bool {
	return slices.ContainsFunc(ips, func(ip *current.IPConfig) bool { return ip.Address.IP.To4() == nil })
}

// setDADSysctls turns duplicate address detection on the interface on
// (with enhanced DAD, whose nonce tells a looped-back probe from a real
// duplicate) or off, as the reference does. It runs in the pod netns.
//
// Equivalent to: sysctl -w net.ipv6.conf.IFNAME.accept_dad=0|1 [net.ipv6.conf.IFNAME.enhanced_dad=1]
func setDADSysctls(ifName string, on bool) error {
	settings := [][2]string{{"accept_dad", "0"}}
	if on {
		settings = [][2]string{{"accept_dad", "1"}, {"enhanced_dad", "1"}}
	}
	for _, kv := range settings {
		path := "/proc/sys/net/ipv6/conf/" + ifName + "/" + kv[0]
		err := os.WriteFile(path, []byte(kv[1]), 0o644)
		if kv[0] == "enhanced_dad" && errors.Is(err, os.ErrNotExist) {
			continue // before Linux 4.15 there is no enhanced DAD; plain DAD still runs
		}
		if err != nil {
			return fmt.Errorf("set %s (%s=%s): %w", ifName, path, kv[1], err)
		}
	}
	return nil
}

// waitDAD waits until none of the pod's IPv6 addresses on link is still
// tentative, so the pod can use them once ADD returns, as the reference
// does with enabledad. An address the kernel found duplicated fails the ADD.
func waitDAD(ctx context.Context, link netlink.Link, ips []*current.IPConfig) error {
	tick := time.NewTicker(dadPoll)
	defer tick.Stop()
	for {
		pending, err := tentative(link, ips)
		if err != nil || pending == "" {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for duplicate address detection of %s on %s: %w", pending, link.Attrs().Name, ctx.Err())
		case <-tick.C:
		}
	}
}

// tentative returns one of the pod's IPv6 addresses still under duplicate
// address detection, "" when there is none, or an error naming an address
// found to be a duplicate.
func tentative(link netlink.Link, ips []*current.IPConfig) (string, error) {
	name := link.Attrs().Name
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V6)
	if err != nil {
		return "", fmt.Errorf("list IPv6 addresses of %s: %w", name, err)
	}
	for _, a := range addrs {
		if !slices.ContainsFunc(ips, func(ip *current.IPConfig) bool { return ip.Address.IP.Equal(a.IP) }) {
			continue
		}
		switch {
		case a.Flags&syscall.IFA_F_DADFAILED != 0:
			return "", fmt.Errorf("address %s on %s: duplicate address detection failed, another host on the bridge has it", a.IPNet, name)
		case a.Flags&syscall.IFA_F_TENTATIVE != 0:
			return a.IPNet.String(), nil
		}
	}
	return "", nil
}
