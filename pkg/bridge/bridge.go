// Package bridge attaches pods to a Linux bridge: it ensures the bridge, makes
// the veth pair with one end in the pod, and drives pkg/ipam for addresses and
// pkg/rules for the network's rules. Every verb of the CNI spec has one
// entry point here; cmd/nodebridge only parses, calls and prints.
package bridge

import (
	"context"
	"errors"
	"fmt"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"golang.org/x/sys/unix"

	"github.com/nodebridge/nodebridge/pkg/rtnl"
)

// undo is the list of steps that reverse what a failing ADD created so far.
type undo []func() error

// run undoes in reverse, and keeps going past a failed step.
func (u undo) run() (err error) {
	for i := len(u) - 1; i >= 0; i-- {
		err = errors.Join(err, u[i]())
	}
	return err
}

// undoStep makes f an undo step with its own deadline: the undo must run
// even when the ADD failed because its own deadline passed.
func undoStep(ctx context.Context, f func(context.Context) error) func() error {
	return func() error {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
		defer cancel()
		return f(uctx)
	}
}

// Add attaches p to the network and returns the result; a failure undoes
// everything this call created (allocation, rules, veth, spoof check). So
// does a panic, returned as a *PanicError.
func Add(ctx context.Context, c *Config, h *Host, p Pod) (_ *current.Result, err error) {
	var u undo
	defer func() {
		if err != nil {
			err = fmtJoin(err, u.run())
		}
	}()
	defer catchPanic(&err) // before the undo, which then sees the error
	ph := h.phases()
	podNS, err := openNetns(p.Netns)
	if err != nil {
		return nil, err
	}
	defer podNS.Close()
	pod := dialPod(podNS) // the pod's socket opens while the host side is set up
	defer pod.close()
	nlh, err := rtnl.Open() // one socket for the call's requests in the host netns
	if err != nil {
		return nil, err
	}
	defer nlh.Close()
	br, err := ensureBridge(c, nlh) // shared by all pods: never undone
	if err != nil {
		return nil, err
	}
	ph.done("bridge")
	ipamRes, err := c.addresser.add(ctx, c, h, p) // first: the pod's MAC comes from its address
	if err != nil {
		return nil, err
	}
	u = append(u, undoStep(ctx, func(ctx context.Context) error { return c.addresser.release(ctx, c, h, p) }))
	ph.done("ipam+rules")
	pair, err := createVeth(c, nlh, br, p, podNS, ipamRes.IPs)
	if err != nil {
		return nil, err
	}
	u = append(u, pair.delete)
	undoSpoof, err := ensureSpoofCheck(ctx, h, pair, p.IfName)
	if err != nil {
		return nil, err
	}
	u = append(u, undoSpoof)
	ph.done("veth")
	res := newResult(c, br, pair, p)
	if err := setIPs(c, res, ipamRes); err != nil {
		return nil, err
	}
	gwLink, err := ensureGateways(c, nlh, br, res)
	if err != nil {
		return nil, err
	}
	ph.done("gateway")
	if err := configureContainer(ctx, c, pod, podNS, p.IfName, res, gatewayMAC(gwLink), pair.podMACChosen); err != nil {
		return nil, err
	}
	if err := seedPod(nlh, gwLink, pair, res); err != nil {
		return nil, err
	}
	ph.done("container")
	return res, nil
}

// Del detaches p; anything already gone is success, so Del is idempotent and
// cleans up after a partial or failed Add.
func Del(ctx context.Context, c *Config, h *Host, p Pod) error {
	ph := h.phases()
	host := hostVethName(p)
	errs := []error{deleteVeth(c, h, p, host)}
	ph.done("veth")
	errs = append(errs, deleteSpoofCheck(ctx, h, host), c.addresser.release(ctx, c, h, p))
	ph.done("ipam+rules")
	return errors.Join(errs...)
}

// deleteVeth removes the pod's veth pair. The host end's name comes from the
// attachment, so deleting it takes the pod end along without entering the
// pod netns; only when it is not there, or is a link of another type (left
// alone), is the pod netns looked into. With a reaper, the pair is down
// when DEL answers and gone soon after (reap.go).
func deleteVeth(c *Config, h *Host, p Pod, host string) error {
	l, err := lookupLink(host)
	if err != nil {
		return fmt.Errorf("host veth %s: %w", host, err)
	}
	if l != nil {
		if err := checkVeth(l); err != nil {
			h.logf("%v", err)
			l = nil // an ADD failing on it made no host end
		}
	}
	if l == nil {
		return deletePodVeth(c, p)
	}
	return retireVeth(h, l)
}

// openNetns opens the pod's network namespace, naming CNI_NETNS when it is
// missing or not a netns.
func openNetns(path string) (ns.NetNS, error) {
	n, err := ns.GetNS(path)
	if err != nil {
		return nil, fmt.Errorf("%w: CNI_NETNS %q: %w", ErrNetns, path, err)
	}
	if err := checkPodNetns(n); err != nil {
		return nil, fmtJoin(fmt.Errorf("%w: CNI_NETNS %q: %w", ErrNetns, path, err), n.Close())
	}
	return n, nil
}

// checkPodNetns insists the pod's namespace is a network namespace and not
// the plugin's own, before anything is made: a pod set up in the node's own
// netns would take over the node's links.
func checkPodNetns(n ns.NetNS) error {
	typ, err := unix.IoctlRetInt(int(n.Fd()), unix.NS_GET_NSTYPE)
	if err != nil {
		return fmt.Errorf("query namespace type: %w", err)
	}
	if typ != unix.CLONE_NEWNET {
		return errors.New("not a network namespace")
	}
	var pod, own unix.Stat_t
	if err := unix.Fstat(int(n.Fd()), &pod); err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	if err := unix.Stat("/proc/thread-self/ns/net", &own); err != nil {
		return fmt.Errorf("stat the plugin's own netns: %w", err)
	}
	if pod.Dev == own.Dev && pod.Ino == own.Ino {
		return errors.New("is the plugin's own network namespace, not a pod's")
	}
	return nil
}
