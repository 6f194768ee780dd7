// Package routes keeps a node's routes to other nodes' pod networks: the
// routes of protocol 78 ("nodebridge") in the main table. It converges them
// to a wanted set (one dump, a map diff, a netlink call per difference),
// reports the route and link events that call for another sync, and finds
// the underlay: the link holding an address of the node, and which gateways
// are on-link there. It knows nothing of Kubernetes: it takes netip and
// netlink values.
package routes

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/nodebridge/nodebridge/pkg/rtnl"
)

// Protocol marks every route the agent installs ("nodebridge" in
// /etc/iproute2/rt_protos.d), so it lists, diffs and deletes only its own.
const Protocol = 78

// Route is one wanted route: Dst via Gw dev LinkIndex proto 78.
type Route struct {
	Dst       netip.Prefix
	Gw        netip.Addr
	LinkIndex int
	LinkName  string // for logs and errors; empty: looked up from LinkIndex
	Node      string // the Node whose podCIDR Dst is, for the log
	// Onlink: Gw is on the link although no prefix of the link holds it
	// (a peer's VTEP through a VXLAN device).
	Onlink bool
}

// Syncer converges the kernel's proto-78 routes of the main table to the
// wanted ones: one dump, a map diff, and a netlink call per difference only.
type Syncer struct {
	h   *netlink.Handle
	rt  *rtnl.Conn // adds, replaces and deletes; nil: through h
	log *slog.Logger
	own *ownDeletes // nil: nobody listens to route events
}

// NewSyncer returns a Syncer of the routes of the netns h reaches,
// changing them over rt, a blocking socket in the same netns, when it is
// not nil (a request through netlink's Handle wakes the runtime's
// poller for its reply: it costs the single Node change tens of µs). It
// remembers its own deletions for WatchDeletes.
func NewSyncer(h *netlink.Handle, rt *rtnl.Conn, log *slog.Logger) *Syncer {
	return &Syncer{h: h, rt: rt, log: log, own: &ownDeletes{}}
}

// routeDiff is what a sync must change: routes to add or replace, and routes to delete.
type routeDiff struct {
	put []routePut
	del []netlink.Route
	ok  int // wanted routes already right
}

// routePut is a wanted route and the wrong one it replaces (nil: it is missing).
type routePut struct {
	want Route
	was  *netlink.Route
}

// list dumps the proto-78 routes of the main table, both families.
// Equivalent to: ip route show proto 78; ip -6 route show proto 78
func (s *Syncer) list() ([]netlink.Route, error) {
	return listRoutes(s.h, &netlink.Route{Protocol: Protocol}, netlink.RT_FILTER_PROTOCOL)
}

// listRoutes dumps the main table's routes that match filter, both
// families; a dump racing a route change is inconsistent, so another is
// taken, up to three.
func listRoutes(h *netlink.Handle, filter *netlink.Route, mask uint64) ([]netlink.Route, error) {
	rs, err := retryDump(func() ([]netlink.Route, error) { return h.RouteListFiltered(netlink.FAMILY_ALL, filter, mask) })
	if err != nil {
		return nil, fmt.Errorf("list routes of the main table (filter %+v): %w", filter, err)
	}
	return rs, nil
}

// Sync lists the kernel's proto-78 routes and applies the difference
// from want (see SyncWith); nil want deletes them all.
func (s *Syncer) Sync(want map[netip.Prefix]Route) (installed, changes int, err error) {
	have, err := s.list()
	if err != nil {
		return 0, 0, err
	}
	return s.SyncWith(want, have)
}

// SyncWith applies the difference between want and have, the kernel's
// proto-78 routes plus any route of another protocol to take over (one per
// wanted destination, see Takes), and returns how many wanted routes are installed and
// how many changes it made.
func (s *Syncer) SyncWith(want map[netip.Prefix]Route, have []netlink.Route) (installed, changes int, err error) {
	d := diffRoutes(want, have)
	installed = d.ok
	var errs []error
	for _, p := range d.put {
		if err := s.replace(p); err != nil {
			errs = append(errs, err)
			continue
		}
		installed++
		changes++
	}
	for i := range d.del {
		if err := s.delete(&d.del[i]); err != nil {
			errs = append(errs, err)
			continue
		}
		changes++
	}
	return installed, changes, errors.Join(errs...)
}

// replace installs one wanted route. A missing one is added exclusively, so
// a route of another protocol to the same destination is reported, never
// overwritten unknowingly; a wrong one of ours, or another protocol's
// passed in have to be taken over (see Takes), is replaced in place (same
// metric), so traffic to the peer never finds no route.
// Equivalent to: ip route add|replace DST via GW dev LINK [onlink] proto 78
func (s *Syncer) replace(p routePut) error {
	w := p.want
	nr := &netlink.Route{
		Dst:       ipNet(w.Dst),
		Gw:        net.IP(w.Gw.AsSlice()),
		LinkIndex: w.LinkIndex,
		Protocol:  Protocol,
		Table:     unix.RT_TABLE_MAIN,
		Scope:     netlink.SCOPE_UNIVERSE,
	}
	if w.Onlink {
		nr.Flags = int(netlink.FLAG_ONLINK)
	}
	add, replace := s.h.RouteAdd, s.h.RouteReplace
	if s.rt != nil {
		add, replace = s.rt.RouteAdd, s.rt.RouteReplace
	}
	op, call := "add", add
	if p.was != nil {
		op, call, nr.Priority = "replace", replace, p.was.Priority
	}
	if p.was != nil && w.Onlink && w.Dst.Addr().Is6() && p.was.LinkIndex != w.LinkIndex {
		// IPv6 checks an onlink gateway against the route to it, which is
		// the one being replaced, through another device: it must go first.
		if err := s.delete(p.was); err != nil {
			return err
		}
		op, call = "add", add
	}
	if err := call(nr); err != nil {
		if errors.Is(err, unix.EEXIST) {
			err = fmt.Errorf("%w (a route of another protocol holds the destination)", err)
		}
		return fmt.Errorf("ip route %s %s via %s dev %s (node %s): %w", op, w.Dst, w.Gw, s.wantedLink(w), w.Node, err)
	}
	if p.was == nil {
		s.log.Info("route added", "dst", w.Dst, "via", w.Gw, "link", s.wantedLink(w), "node", w.Node)
	} else {
		s.log.Info("route replaced", "dst", w.Dst, "via", w.Gw, "link", s.wantedLink(w), "node", w.Node,
			"was_via", p.was.Gw, "was_link", s.linkName(p.was.LinkIndex), "was_proto", p.was.Protocol)
	}
	return nil
}

// wantedLink names the link of a wanted route.
func (s *Syncer) wantedLink(w Route) string {
	if w.LinkName != "" {
		return w.LinkName
	}
	return s.linkName(w.LinkIndex)
}

// linkName names the link of index i for a log line; a link already gone
// (or none: 0) is shown by its index, "#i".
// Equivalent to: ip link show index I
func (s *Syncer) linkName(i int) string {
	if i > 0 {
		byIndex := s.h.LinkByIndex
		if s.rt != nil {
			byIndex = s.rt.LinkByIndex
		}
		if l, err := byIndex(i); err == nil {
			return l.Attrs().Name
		}
	}
	return fmt.Sprintf("#%d", i)
}

// delete removes a route the agent no longer wants; one already gone is fine.
// Equivalent to: ip route del DST via GW proto 78
func (s *Syncer) delete(h *netlink.Route) error {
	if dst, ok := routeDst(h); ok {
		s.own.add(dst, time.Now()) // before the event can arrive
	}
	del := s.h.RouteDel
	if s.rt != nil {
		del = s.rt.RouteDel
	}
	err := del(h)
	if err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("ip route del %s via %s proto %d: %w", h.Dst, h.Gw, Protocol, err)
	}
	s.log.Info("route deleted", "dst", h.Dst, "via", h.Gw, "link", s.linkName(h.LinkIndex))
	return nil
}

// diffRoutes compares the wanted routes with the kernel's proto-78 routes.
// A wanted destination listed twice keeps its first route; the rest go.
func diffRoutes(want map[netip.Prefix]Route, have []netlink.Route) routeDiff {
	var d routeDiff
	seen := make(map[netip.Prefix]bool, len(have))
	for i := range have {
		h := &have[i]
		dst, ok := routeDst(h)
		w, wanted := want[dst]
		if !ok || !wanted || seen[dst] {
			d.del = append(d.del, *h)
			continue
		}
		seen[dst] = true
		if routeMatches(h, w) && h.Protocol == Protocol {
			d.ok++
			continue
		}
		d.put = append(d.put, routePut{want: w, was: h})
	}
	for dst, w := range want {
		if !seen[dst] {
			d.put = append(d.put, routePut{want: w})
		}
	}
	return d
}

// routeMatches reports whether h goes where the wanted route w goes.
func routeMatches(h *netlink.Route, w Route) bool {
	gw, ok := netip.AddrFromSlice(h.Gw)
	onlink := h.Flags&int(netlink.FLAG_ONLINK) != 0
	return ok && gw.Unmap() == w.Gw && h.LinkIndex == w.LinkIndex && len(h.MultiPath) == 0 && onlink == w.Onlink
}

// routeDst is a route's destination; a nil Dst is its family's default route.
func routeDst(h *netlink.Route) (netip.Prefix, bool) {
	if h.Dst == nil {
		if h.Family == netlink.FAMILY_V6 {
			return netip.PrefixFrom(netip.IPv6Unspecified(), 0), true
		}
		return netip.PrefixFrom(netip.IPv4Unspecified(), 0), true
	}
	a, ok := netip.AddrFromSlice(h.Dst.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := h.Dst.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}

// ipNet converts a masked prefix for netlink.
func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
