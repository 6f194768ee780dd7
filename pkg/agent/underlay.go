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
	addrs    []hostAddr      // every address of every link, both families
	gateways []netip.Addr    // gateways of the main table's default routes
	ours     []netlink.Route // the main table's proto-78 routes, for the route sync
}

// readHost lists the node's addresses, and from one dump of the main
// table its default-route gateways and the agent's own routes.
// Equivalent to: ip addr show; ip route show; ip -6 route show
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
	rs, err := listRoutes(h, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return host{}, err
	}
	hs.gateways, hs.ours = defaultGateways(rs), agentRoutes(rs)
	return hs, nil
}

// defaultGateways returns the gateways of the default routes among rs,
// every nexthop of a multipath one included.
func defaultGateways(rs []netlink.Route) []netip.Addr {
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
	return out
}

// agentRoutes returns the routes of the agent's protocol among rs.
func agentRoutes(rs []netlink.Route) []netlink.Route {
	var out []netlink.Route
	for _, r := range rs {
		if r.Protocol == routeProtocol {
			out = append(out, r)
		}
	}
	return out
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
