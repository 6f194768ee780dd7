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
	nlh, err := rtnl.Open() // one socket for the call's requests in the host netns
	if err != nil {
		return nil, err
	}
	defer nlh.Close()
	podNS, err := openNetns(p.Netns, nlh)
	if err != nil {
		return nil, err
	}
	defer podNS.Close()
	pod := dialPod(podNS) // the pod's socket opens while the host side is set up
	defer pod.close()
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

// podNetns is the pod's network namespace, open as a plain descriptor.
// os.Open, which ns.GetNS uses, would start the Go runtime's poller (an
// epoll instance, an eventfd and a thread to wait on them) in a process
// with nothing to poll. The rare steps that need a thread inside enter it
// through the descriptor (do).
type podNetns struct {
	fd   int
	path string // CNI_NETNS, for messages
}

// openNetns opens the pod's network namespace, naming CNI_NETNS when it is
// missing, not a netns, or the plugin's own: the netns of self, a socket
// the plugin opened.
func openNetns(path string, self *rtnl.Conn) (*podNetns, error) {
	// O_NONBLOCK: a FIFO planted at the path opens at once, and then fails
	// the type check; an nsfs file ignores it.
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: CNI_NETNS %q: %w", ErrNetns, path, err)
	}
	n := &podNetns{fd: fd, path: path}
	if err := checkPodNetns(n, self); err != nil {
		return nil, fmtJoin(fmt.Errorf("%w: CNI_NETNS %q: %w", ErrNetns, path, err), n.Close())
	}
	return n, nil
}

// Close closes the descriptor.
func (n *podNetns) Close() error { return unix.Close(n.fd) }

// do runs f, a panic in it caught as an error, inside the pod netns
// (rtnl.InNetns: a thread that enters it and is thrown away): no netns handle to
// open (ns.GetNS opens an os.File, which starts the runtime's poller) and
// no way back to switch to.
func (n *podNetns) do(f func() error) error {
	_, err := rtnl.InNetns(n.fd, func() (_ struct{}, err error) {
		defer catchPanic(&err)
		return struct{}{}, f()
	})
	return err
}

// checkPodNetns insists the pod's namespace is a network namespace and not
// the plugin's own (see openNetns), before anything is made: a pod set up
// in the node's own netns would take over the node's links.
func checkPodNetns(n *podNetns, self *rtnl.Conn) error {
	typ, err := unix.IoctlRetInt(n.fd, unix.NS_GET_NSTYPE)
	if err != nil {
		return fmt.Errorf("not a namespace (%w)", err)
	}
	if typ != unix.CLONE_NEWNET {
		return errors.New("not a network namespace")
	}
	var pod unix.Stat_t
	if err := unix.Fstat(n.fd, &pod); err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	dev, ino, err := self.Netns()
	if err != nil {
		return err
	}
	if pod.Dev == dev && pod.Ino == ino {
		return errors.New("is the plugin's own network namespace, not a pod's")
	}
	return nil
}
