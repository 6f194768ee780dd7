package routes

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/nodebridge/nodebridge/pkg/rtnl"
)

// Addr is one address of the node netns and the link holding it.
type Addr struct {
	Prefix    netip.Prefix // as configured: address and length, unmasked
	LinkIndex int
	LinkName  string
	MTU       int
}

// Host is what the node netns says about its own addressing, read once per
// reconcile: a peer's podCIDR must not shadow any of it.
type Host struct {
	Addrs    []Addr          // every address of every link, both families
	Gateways []netip.Addr    // gateways of the main table's default routes
	Ours     []netlink.Route // the main table's proto-78 routes, for SyncWith
	// Foreign holds, by destination, a main-table route of another
	// protocol (another tool's, or the operator's) to a destination no
	// proto-78 route has: adding ours there fails with "file exists".
	Foreign map[netip.Prefix]netlink.Route
}

// ReadHost lists the node's addresses, and from one dump of the main
// table its default-route gateways and the agent's own routes.
// Equivalent to: ip addr show; ip route show; ip -6 route show
//
// It reads over c, a blocking rtnetlink socket of the node netns, each
// object decoded with only the fields used: netlink's Handle decodes every
// attribute of every link (its statistics included), receives each reply
// into a fresh 64 KiB buffer and wakes the runtime's poller for it. Even
// so these dumps were most of a single Node change's own cost, so the agent
// calls ReadHost only when its watch of the node saw a change (pkg/agent's
// hostCache).
func ReadHost(c *rtnl.Conn) (Host, error) {
	links, err := retryDump(c.Links)
	if err != nil {
		return Host{}, fmt.Errorf("list links: %w", err)
	}
	byIndex := make(map[int]*netlink.LinkAttrs, len(links))
	for _, l := range links {
		byIndex[l.Attrs().Index] = l.Attrs()
	}
	addrs, err := retryDump(c.Addrs)
	if err != nil {
		return Host{}, fmt.Errorf("list addresses: %w", err)
	}
	var hs Host
	for _, a := range addrs {
		attrs := byIndex[a.LinkIndex]
		if attrs == nil {
			continue // a link created after the link dump: the next reconcile sees it
		}
		hs.Addrs = append(hs.Addrs, Addr{Prefix: netip.PrefixFrom(a.Prefix.Addr().Unmap(), a.Prefix.Bits()),
			LinkIndex: a.LinkIndex, LinkName: attrs.Name, MTU: attrs.MTU})
	}
	rs, err := retryDump(func() ([]netlink.Route, error) { return c.Routes(unix.RT_TABLE_MAIN) })
	if err != nil {
		return Host{}, fmt.Errorf("list routes of the main table: %w", err)
	}
	hs.Gateways, hs.Ours = defaultGateways(rs), agentRoutes(rs)
	hs.Foreign = foreignRoutes(rs)
	return hs, nil
}

// retryDump asks list again, up to three times in all, while the kernel
// says its dump was interrupted by a change (to rtnl's dumps, or to
// netlink's Handle's).
func retryDump[T any](list func() ([]T, error)) ([]T, error) {
	for attempt := 1; ; attempt++ {
		out, err := list()
		interrupted := errors.Is(err, rtnl.ErrDumpInterrupted) || errors.Is(err, netlink.ErrDumpInterrupted)
		if interrupted && attempt < 3 {
			continue
		}
		return out, err
	}
}

// foreignRoutes returns, by destination, the unicast routes of other
// protocols among rs whose destination no proto-78 route has; the kernel's
// own (proto kernel: connected prefixes, local addresses) are not another
// tool's. The first of several to one destination is kept.
func foreignRoutes(rs []netlink.Route) map[netip.Prefix]netlink.Route {
	ours := map[netip.Prefix]bool{}
	for i := range rs {
		if dst, ok := routeDst(&rs[i]); ok && rs[i].Protocol == Protocol {
			ours[dst] = true
		}
	}
	out := map[netip.Prefix]netlink.Route{}
	for i := range rs {
		r := &rs[i]
		dst, ok := routeDst(r)
		if !ok || r.Dst == nil || r.Protocol == Protocol || r.Protocol == unix.RTPROT_KERNEL || ours[dst] {
			continue
		}
		if _, seen := out[dst]; !seen {
			out[dst] = *r
		}
	}
	return out
}

// Takes reports whether the agent may take r, another protocol's route,
// over as its own route w: it already sends w's traffic the same way, to
// the same gateway through the same link, so replacing it changes nothing
// but the protocol.
func Takes(r *netlink.Route, w Route) bool {
	return r.Type == unix.RTN_UNICAST && routeMatches(r, w)
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
		if r.Protocol == Protocol {
			out = append(out, r)
		}
	}
	return out
}

// Underlay is the link holding one of the node's own addresses: routes to
// peers of that address's family leave through it.
type Underlay struct {
	Addr      netip.Addr
	LinkIndex int
	LinkName  string
	MTU       int
	Connected []netip.Prefix // masked prefixes of the link's addresses of the family
	Local     []netip.Addr   // the link's own addresses of the family, Addr among them
}

// UnderlayOf builds the underlay of ip from the node's addresses; nil when
// no link holds ip.
func UnderlayOf(ip netip.Addr, addrs []Addr) *Underlay {
	var u *Underlay
	for _, a := range addrs {
		if a.Prefix.Addr() == ip {
			u = &Underlay{Addr: ip, LinkIndex: a.LinkIndex, LinkName: a.LinkName, MTU: a.MTU}
			break
		}
	}
	if u == nil {
		return nil
	}
	for _, a := range addrs {
		if a.LinkIndex == u.LinkIndex && a.Prefix.Addr().Is4() == ip.Is4() {
			u.Connected = append(u.Connected, a.Prefix.Masked())
			u.Local = append(u.Local, a.Prefix.Addr())
		}
	}
	return u
}

// OnLink reports whether gw is reachable without a gateway on u: inside a
// prefix connected on the link, and not one of the link's own addresses (a
// route via the node itself goes nowhere).
func (u *Underlay) OnLink(gw netip.Addr) bool {
	if gw == u.Addr || slices.Contains(u.Local, gw) {
		return false
	}
	for _, p := range u.Connected {
		if p.Contains(gw) {
			return true
		}
	}
	return false
}
