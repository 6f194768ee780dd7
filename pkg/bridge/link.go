package bridge

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/nodebridge/nodebridge/pkg/rtnl"
)

// ensureBridge returns the network's bridge, creating it if absent, and makes
// sure it is up. A bridge it creates gets a fixed random MAC, so the bridge's
// address does not follow its lowest-numbered port as pods come and go.
//
// Equivalent to: ip link add BR address MAC mtu MTU type bridge [vlan_filtering 1];
// ip link set BR up
func ensureBridge(c *Config, h *rtnl.Conn) (*netlink.Bridge, error) {
	br, v6, err := lookupBridgeIPv6(h, c.Bridge)
	if errors.As(err, &netlink.LinkNotFoundError{}) {
		if err = createBridge(c); err == nil {
			br, v6, err = lookupBridgeIPv6(h, c.Bridge)
		}
	}
	if err != nil {
		return nil, err
	}
	if c.PromiscMode && !promisc(br) {
		if err := h.SetPromiscOn(br); err != nil {
			return nil, fmt.Errorf("set promiscuous mode on bridge %s: %w", c.Bridge, err)
		}
	}
	if err := ensureNoRA(c.Bridge, v6); err != nil {
		return nil, err
	}
	if br.Flags&net.FlagUp == 0 {
		if err := h.LinkSetUp(br); err != nil {
			return nil, fmt.Errorf("set bridge %s up: %w", c.Bridge, err)
		}
	}
	return br, nil
}

// ensureNoRA keeps the bridge from taking addresses and routes from router
// advertisements, as the reference does: its addresses and the pods' routes
// are the plugin's. v6 is the bridge's IPv6 settings as its lookup read
// them: without IPv6 there is nothing to turn off, and a bridge already at
// 0 needs no write.
//
// Equivalent to: sysctl -w net.ipv6.conf.BR.accept_ra=0
func ensureNoRA(bridge string, v6 rtnl.IPv6Conf) error {
	if !v6.On || v6.AcceptRA == 0 {
		return nil
	}
	path := "/proc/sys/net/ipv6/conf/" + bridge + "/accept_ra"
	if err := os.WriteFile(path, []byte("0"), 0o644); err != nil {
		return fmt.Errorf("turn off router advertisements on bridge %s (%s): %w", bridge, path, err)
	}
	return nil
}

// promisc reports whether promiscuous mode was asked for on l. The kernel
// reports IFF_PROMISC only when set that way; the promiscuity count also
// counts packet sockets such as tcpdump's, which come and go.
func promisc(l netlink.Link) bool {
	return l.Attrs().RawFlags&unix.IFF_PROMISC != 0
}

// pkgNetlink is a handle without a socket of its own: each request opens
// one in the calling thread's netns, as netlink's package functions do. The
// verbs other than ADD, which make few requests, use it.
var pkgNetlink = &netlink.Handle{}

// lookupBridgeIPv6 finds name, insists it is a bridge, and returns its IPv6
// settings, read in the same request.
func lookupBridgeIPv6(h *rtnl.Conn, name string) (*netlink.Bridge, rtnl.IPv6Conf, error) {
	l, v6, err := h.LinkIPv6ByName(name)
	if err != nil {
		return nil, v6, fmt.Errorf("look up bridge %s: %w", name, err)
	}
	br, err := asBridge(l, name)
	return br, v6, err
}

// asBridge insists that l, the link named name, is a bridge.
func asBridge(l netlink.Link, name string) (*netlink.Bridge, error) {
	br, ok := l.(*netlink.Bridge)
	if !ok {
		return nil, fmt.Errorf("%w: bridge %q: link exists and is a %s, not a bridge", ErrInvalid, name, l.Type())
	}
	return br, nil
}

// createBridge adds the bridge, once per node, with netlink's Handle; losing
// a race to a concurrent ADD that created it first is not an error.
func createBridge(c *Config) error {
	mac, err := randomMAC()
	if err != nil {
		return err
	}
	la := netlink.NewLinkAttrs()
	la.Name = c.Bridge
	la.MTU = c.MTU
	la.HardwareAddr = mac
	br := &netlink.Bridge{LinkAttrs: la}
	if c.vlanFiltering() {
		br.VlanFiltering = new(true)
	}
	err = pkgNetlink.LinkAdd(br)
	switch {
	case err == nil || errors.Is(err, syscall.EEXIST):
		return nil
	case c.vlanFiltering():
		return vlanKernelError(fmt.Errorf("create bridge %s with vlan_filtering for %s: %w", c.Bridge, c.vlanFields(), err))
	}
	return fmt.Errorf("create bridge %s: %w", c.Bridge, err)
}

// randomMAC returns a locally administered unicast MAC, from the getrandom
// system call itself: crypto/rand's first use in a process sets up its
// generator, and unix.Getrandom's (through the vDSO) maps per-thread state,
// each about 0.03 ms, for six bytes whose only need is to differ.
func randomMAC() (net.HardwareAddr, error) {
	mac := make(net.HardwareAddr, 6)
	// Up to 256 bytes come whole.
	if _, _, errno := unix.Syscall(unix.SYS_GETRANDOM, uintptr(unsafe.Pointer(&mac[0])), uintptr(len(mac)), 0); errno != 0 {
		return nil, fmt.Errorf("random MAC: %w", errno)
	}
	mac[0] = mac[0]&0xfe | 0x02
	return mac, nil
}

// ensureGateway puts gw (with the subnet's prefix length) on link, the bridge
// or a VLAN network's gateway interface. It tries the add first: from the
// second pod on the address is there and the kernel's EEXIST settles it
// without listing the addresses, a dump that grows with the node's links.
// Only a fresh add looks for conflicts: an address of the same family
// already there is one, as in the reference plugin (IPv6: only when the
// subnets overlap), unless forceAddress replaces it. Addresses in keep (this
// call's other gateways) never conflict.
//
// Equivalent to: ip addr add GW/LEN dev LINK
func ensureGateway(c *Config, h *rtnl.Conn, link netlink.Link, gw netip.Prefix, keep []netip.Prefix) error {
	name := "bridge " + link.Attrs().Name
	if _, ok := link.(*netlink.Bridge); !ok {
		name = "vlan gateway " + link.Attrs().Name
	}
	addr := &netlink.Addr{IPNet: prefixToIPNet(gw)}
	if gw.Addr().Is6() {
		addr.Flags = syscall.IFA_F_NODAD // the gateway is ours; don't wait on duplicate detection
	}
	err := h.AddrAdd(link, addr)
	if errors.Is(err, syscall.EEXIST) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("add gateway %s to %s: %w", gw, name, err)
	}
	removed, err := resolveConflicts(c, link, name, gw, keep)
	if err != nil {
		return fmtJoin(err, pkgNetlink.AddrDel(link, addr)) // refused: take our add back
	}
	if removed {
		// Deleting a primary IPv4 address takes its secondaries with it,
		// ours among them unless promote_secondaries is on.
		if err := h.AddrAdd(link, addr); err != nil && !errors.Is(err, syscall.EEXIST) {
			return fmt.Errorf("add gateway %s to %s: %w", gw, name, err)
		}
	}
	return nil
}

// resolveConflicts deals with the addresses of gw's family on link other
// than gw: an error naming the first without forceAddress, else their
// removal (and removed is true). It runs once per gateway and node, with
// netlink's Handle.
func resolveConflicts(c *Config, link netlink.Link, name string, gw netip.Prefix, keep []netip.Prefix) (removed bool, err error) {
	h := pkgNetlink
	addrs, err := h.AddrList(link, nl.GetIPFamily(gw.Addr().AsSlice()))
	if err != nil {
		return false, fmt.Errorf("list addresses of %s: %w", name, err)
	}
	for _, a := range addrs {
		have := toPrefix(a.IPNet)
		if have == gw || contains(keep, have) || have.Addr().IsLinkLocalUnicast() || (gw.Addr().Is6() && !have.Overlaps(gw)) {
			continue
		}
		if !c.ForceAddress {
			return false, fmt.Errorf("%w: %s already has address %s, not the gateway %s (set forceAddress to replace it)", ErrInvalid, name, have, gw)
		}
		if err := h.AddrDel(link, &a); err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) {
			return removed, fmt.Errorf("remove address %s from %s: %w", have, name, err)
		}
		removed = true
	}
	return removed, nil
}

// enableForwarding turns on forwarding for the family in the host netns
// (h's), writing the sysctl only when h reads it off.
//
// Equivalent to: sysctl -w net.ipv4.ip_forward=1 (net.ipv6.conf.all.forwarding=1)
func enableForwarding(h *rtnl.Conn, v6 bool) error {
	path := "/proc/sys/net/ipv4/ip_forward"
	if v6 {
		path = "/proc/sys/net/ipv6/conf/all/forwarding"
	}
	if on, err := h.Forwarding(v6); err == nil && on {
		return nil
	}
	if err := os.WriteFile(path, []byte("1"), 0o644); err != nil {
		return fmt.Errorf("enable forwarding (%s): %w", path, err)
	}
	return nil
}

// deleteLink removes a link of the current netns; a missing link is fine.
//
// Equivalent to: ip link del NAME
func deleteLink(name string) error {
	l, err := lookupLink(name)
	if l == nil {
		return err
	}
	return delLink(l)
}

// lookupLink returns the link name of the current netns; nil and no error
// when there is none.
func lookupLink(name string) (netlink.Link, error) {
	l, err := netlink.LinkByName(name)
	if errors.As(err, &netlink.LinkNotFoundError{}) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up %s: %w", name, err)
	}
	return l, nil
}

// delLink removes l; a link gone meanwhile is fine.
func delLink(l netlink.Link) error {
	if err := netlink.LinkDel(l); err != nil && !errors.Is(err, syscall.ENODEV) {
		return fmt.Errorf("delete link %s: %w", l.Attrs().Name, err)
	}
	return nil
}

func contains(list []netip.Prefix, p netip.Prefix) bool {
	for _, q := range list {
		if q == p {
			return true
		}
	}
	return false
}

// toPrefix converts a kernel address (never nil here) to a netip.Prefix.
func toPrefix(n *net.IPNet) netip.Prefix {
	a, _ := netip.AddrFromSlice(n.IP) // a kernel address always converts
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones)
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
