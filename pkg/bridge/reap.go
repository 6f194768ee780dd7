package bridge

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
)

// Deleting a veth returns only after the kernel's RCU barrier in
// netdev_run_todo: about 20 of the 21 ms a DEL took on the bench machine,
// spent waiting, not working. So with Host.Reaper set, DEL takes the pod's
// veth out of service itself (the host end down: the port stops forwarding,
// its FDB entries go and the pod loses carrier) and leaves the deletion to a
// detached process, the reaper, which waits out the barrier after DEL has
// answered. An ADD of the same attachment that still finds the pair deletes
// it itself (clearStaleVeth); GC deletes any pair a lost reaper left down.

// A reaper is the plugin binary started as ReaperName (its argv[0], which
// no runtime uses) with ReapEnv="IFINDEX:NAME" of the host end to delete:
// both, so a variable leaked into a runtime's environment cannot turn CNI
// calls into silent no-ops.
const (
	ReaperName = "nodebridge-reaper"
	ReapEnv    = "NODEBRIDGE_REAP"
)

// retireVeth takes the pod's veth pair out of service and has it deleted:
// by a reaper when h.Reaper is set, else here, waiting for the kernel. A
// reaper that cannot start falls back to the wait.
//
// Equivalent to: ip link set HOST down; (ip link del HOST &)
func retireVeth(h *Host, l netlink.Link) error {
	if h.Reaper == "" {
		return delLink(l)
	}
	if err := netlink.LinkSetDown(l); err != nil {
		if errors.Is(err, syscall.ENODEV) {
			return nil
		}
		return fmt.Errorf("set host veth %s down: %w", l.Attrs().Name, err)
	}
	if err := startReaper(h.Reaper, l.Attrs()); err != nil {
		h.logf("start reaper for %s (deleting it here instead): %v", l.Attrs().Name, err)
		return delLink(l)
	}
	return nil
}

// startReaper execs exe as a reaper of the link, in its own session with
// no stdio, and does not wait for it: a runtime that reads the plugin's
// stdout to EOF must not wait either. It runs in this thread's netns.
func startReaper(exe string, a *netlink.LinkAttrs) error {
	null, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer null.Close()
	p, err := os.StartProcess(exe, []string{ReaperName}, &os.ProcAttr{
		Env:   []string{ReapEnv + "=" + strconv.Itoa(a.Index) + ":" + a.Name},
		Files: []*os.File{null, null, null},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		return fmt.Errorf("exec %s: %w", exe, err)
	}
	return p.Release()
}

// Reap is the reaper: it deletes the link IFINDEX of arg if it is still
// NAME, still down and a veth. An index is never reused soon, and checking
// the name and state spares a link an ADD made in the meantime under the
// same name; checking the type, any link that is not a pod's.
func Reap(arg string) error {
	idx, name, ok := strings.Cut(arg, ":")
	index, err := strconv.Atoi(idx)
	if !ok || err != nil || name == "" {
		return fmt.Errorf("%s %q: want IFINDEX:NAME", ReapEnv, arg)
	}
	l, err := netlink.LinkByIndex(index)
	if err != nil {
		return nil // gone already
	}
	if a := l.Attrs(); a.Name != name || a.Flags&net.FlagUp != 0 || l.Type() != "veth" {
		return nil
	}
	return delLink(l)
}

// sweepRetired deletes the host ends on c's bridge that DEL left down for a
// reaper that never finished (killed with the runtime, say), except those
// of c's valid attachments.
func sweepRetired(c *Config) error {
	br, err := netlink.LinkByName(c.Bridge)
	if errors.As(err, &netlink.LinkNotFoundError{}) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up bridge %s: %w", c.Bridge, err)
	}
	links, err := netlink.LinkList()
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	kept := make(map[string]bool, len(c.ValidAttachments))
	for _, a := range c.ValidAttachments {
		kept[hostVethName(Pod{ContainerID: a.ContainerID, IfName: a.IfName})] = true
	}
	var errs []error
	for _, l := range links {
		a := l.Attrs()
		if l.Type() == "veth" && a.MasterIndex == br.Attrs().Index && a.Flags&net.FlagUp == 0 && isHostVethName(a.Name) && !kept[a.Name] {
			errs = append(errs, delLink(l))
		}
	}
	return errors.Join(errs...)
}
