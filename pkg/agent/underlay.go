package agent

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// hostAddr is one address of the node netns and the link holding it.
type hostAddr struct {
	prefix    netip.Prefix // as configured: address and length, unmasked
	linkIndex int
	linkName  string
	mtu       int
}

// host is what the node netns says about its own addressing, read once per
// reconcile: a peer's podCIDR must not shadow any of it.
type host struct {
	addrs    []hostAddr   // every address of every link, both families
	gateways []netip.Addr // gateways of the main table's default routes
}

// readHost lists the node's addresses and default-route gateways.
// Equivalent to: ip addr show; ip route show default; ip -6 route show default
func readHost(h *netlink.Handle) (host, error) {
	links, err := h.LinkList()
	if err != nil {
		return host{}, fmt.Errorf("list links: %w", err)
	}
	byIndex := make(map[int]*netlink.LinkAttrs, len(links))
	for _, l := range links {
		byIndex[l.Attrs().Index] = l.Attrs()
	}
	addrs, err := h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return host{}, fmt.Errorf("list addresses: %w", err)
	}
	var hs host
	for _, a := range addrs {
		x, ok := netip.AddrFromSlice(a.IP)
		attrs := byIndex[a.LinkIndex]
		if !ok || a.IPNet == nil || attrs == nil {
			continue // a link created after the link dump: the next reconcile sees it
		}
		ones, _ := a.Mask.Size()
		hs.addrs = append(hs.addrs, hostAddr{prefix: netip.PrefixFrom(x.Unmap(), ones),
			linkIndex: a.LinkIndex, linkName: attrs.Name, mtu: attrs.MTU})
	}
	hs.gateways, err = defaultGateways(h)
	return hs, err
}

// defaultGateways returns the gateways of the main table's default routes,
// every nexthop of a multipath one included.
func defaultGateways(h *netlink.Handle) ([]netip.Addr, error) {
	filter := &netlink.Route{Table: unix.RT_TABLE_MAIN}
	rs, err := h.RouteListFiltered(netlink.FAMILY_ALL, filter, netlink.RT_FILTER_TABLE)
	for attempt := 1; errors.Is(err, netlink.ErrDumpInterrupted) && attempt < 3; attempt++ {
		rs, err = h.RouteListFiltered(netlink.FAMILY_ALL, filter, netlink.RT_FILTER_TABLE)
	}
	if err != nil {
		return nil, fmt.Errorf("list routes of the main table: %w", err)
	}
	var out []netip.Addr
	add := func(ip []byte) {
		if a, ok := netip.AddrFromSlice(ip); ok {
			out = append(out, a.Unmap())
		}
	}
	for _, r := range rs {
		if r.Dst != nil {
			if ones, _ := r.Dst.Mask.Size(); ones != 0 {
				continue
			}
		}
		add(r.Gw)
		for _, nh := range r.MultiPath {
			add(nh.Gw)
		}
	}
	return out, nil
}

// underlaysOf finds, for each family with an InternalIP, the link holding
// that address: peer routes leave through it and its MTU goes into the
// conflist. A family whose address is on no link (IPv6 addresses go when a
// link goes down) is nil in the result and named in the error, so the other
// family still gets its routes.
func underlaysOf(ips [2]netip.Addr, addrs []hostAddr) ([2]*underlay, error) {
	var out [2]*underlay
	if !ips[v4].IsValid() && !ips[v6].IsValid() {
		return out, errNoInternal
	}
	var errs []error
	for f, ip := range ips {
		if !ip.IsValid() {
			continue
		}
		out[f] = underlayOf(ip, addrs)
		if out[f] == nil {
			errs = append(errs, fmt.Errorf("find the link of InternalIP %s: no link holds it", ip))
		}
	}
	return out, errors.Join(errs...)
}

// underlayOf builds the underlay of ip from the node's addresses; nil when
// no link holds ip.
func underlayOf(ip netip.Addr, addrs []hostAddr) *underlay {
	var u *underlay
	for _, a := range addrs {
		if a.prefix.Addr() == ip {
			u = &underlay{addr: ip, linkIndex: a.linkIndex, linkName: a.linkName, mtu: a.mtu}
			break
		}
	}
	if u == nil {
		return nil
	}
	for _, a := range addrs {
		if a.linkIndex == u.linkIndex && a.prefix.Addr().Is4() == ip.Is4() {
			u.connected = append(u.connected, a.prefix.Masked())
		}
	}
	return u
}

// underlayMTU is the MTU for pods: the smaller of the underlay links'.
func underlayMTU(ul [2]*underlay) int {
	mtu := 0
	for _, u := range ul {
		if u != nil && (mtu == 0 || u.mtu < mtu) {
			mtu = u.mtu
		}
	}
	return mtu
}
