package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// routeProtocol marks every route the agent installs ("nodebridge" in
// /etc/iproute2/rt_protos.d), so it lists, diffs and deletes only its own.
const routeProtocol = 78

// routeSyncer converges the kernel's proto-78 routes of the main table to the
// desired ones: one dump, a map diff, and a netlink call per difference only.
type routeSyncer struct {
	h   *netlink.Handle
	log *slog.Logger
	own *ownDeletes // nil: nobody listens to route events
}

// ownDeletes remembers the routes the agent deleted itself, so that the
// route event each deletion raises does not poke another reconcile: only
// a deletion by someone else (an operator, the kernel) needs one.
type ownDeletes struct {
	mu   sync.Mutex
	dsts map[netip.Prefix]time.Time // when deleted
}

// ownDeleteTTL bounds how long a deletion's event is waited for; the
// event comes at once, so an entry older than this missed it.
const ownDeleteTTL = 5 * time.Second

// add records that the agent deleted the route to dst at now.
func (o *ownDeletes) add(dst netip.Prefix, now time.Time) {
	if o == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.dsts == nil {
		o.dsts = map[netip.Prefix]time.Time{}
	}
	for d, at := range o.dsts {
		if now.Sub(at) > ownDeleteTTL {
			delete(o.dsts, d)
		}
	}
	o.dsts[dst] = now
}

// take reports whether the deletion of dst seen at now is one the agent
// made, and forgets it: its event is accounted for.
func (o *ownDeletes) take(dst netip.Prefix, now time.Time) bool {
	if o == nil {
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	at, ok := o.dsts[dst]
	delete(o.dsts, dst)
	return ok && now.Sub(at) <= ownDeleteTTL
}

// routeDiff is what sync must change: routes to add or replace, and routes to delete.
type routeDiff struct {
	put []routePut
	del []netlink.Route
	ok  int // wanted routes already right
}

// routePut is a wanted route and the wrong one it replaces (nil: it is missing).
type routePut struct {
	want route
	was  *netlink.Route
}

// list dumps the proto-78 routes of the main table, both families.
// Equivalent to: ip route show proto 78; ip -6 route show proto 78
func (r *routeSyncer) list() ([]netlink.Route, error) {
	return listRoutes(r.h, &netlink.Route{Protocol: routeProtocol}, netlink.RT_FILTER_PROTOCOL)
}

// listRoutes dumps the main table's routes that match filter, both
// families; a dump racing a route change is inconsistent, so another is
// taken, up to three.
func listRoutes(h *netlink.Handle, filter *netlink.Route, mask uint64) ([]netlink.Route, error) {
	for attempt := 1; ; attempt++ {
		rs, err := h.RouteListFiltered(netlink.FAMILY_ALL, filter, mask)
		if errors.Is(err, netlink.ErrDumpInterrupted) && attempt < 3 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list routes of the main table (filter %+v): %w", filter, err)
		}
		return rs, nil
	}
}

// sync lists the kernel's proto-78 routes and applies the difference
// from want (see syncWith).
func (r *routeSyncer) sync(want map[netip.Prefix]route) (installed, changes int, err error) {
	have, err := r.list()
	if err != nil {
		return 0, 0, err
	}
	return r.syncWith(want, have)
}

// syncWith applies the difference between want and have, the kernel's
// proto-78 routes, and returns how many wanted routes are installed and
// how many changes it made.
func (r *routeSyncer) syncWith(want map[netip.Prefix]route, have []netlink.Route) (installed, changes int, err error) {
	d := diffRoutes(want, have)
	installed = d.ok
	var errs []error
	for _, p := range d.put {
		if err := r.replace(p); err != nil {
			errs = append(errs, err)
			continue
		}
		installed++
		changes++
	}
	for i := range d.del {
		if err := r.delete(&d.del[i]); err != nil {
			errs = append(errs, err)
			continue
		}
		changes++
	}
	return installed, changes, errors.Join(errs...)
}

// replace installs one wanted route. A missing one is added exclusively, so
// a route of another protocol to the same destination is reported, never
// overwritten; a wrong one of ours is replaced in place (same metric), so
// traffic to the peer never finds no route.
// Equivalent to: ip route add|replace DST via GW dev LINK proto 78
func (r *routeSyncer) replace(p routePut) error {
	w := p.want
	nr := &netlink.Route{
		Dst:       ipNet(w.dst),
		Gw:        net.IP(w.gw.AsSlice()),
		LinkIndex: w.linkIndex,
		Protocol:  routeProtocol,
		Table:     unix.RT_TABLE_MAIN,
		Scope:     netlink.SCOPE_UNIVERSE,
	}
	op, call := "add", r.h.RouteAdd
	if p.was != nil {
		op, call, nr.Priority = "replace", r.h.RouteReplace, p.was.Priority
	}
	if err := call(nr); err != nil {
		if errors.Is(err, unix.EEXIST) {
			err = fmt.Errorf("%w (a route of another protocol holds the destination)", err)
		}
		return fmt.Errorf("ip route %s %s via %s dev #%d (node %s): %w", op, w.dst, w.gw, w.linkIndex, w.node, err)
	}
	if p.was == nil {
		r.log.Info("route added", "dst", w.dst, "via", w.gw, "link", w.linkIndex, "node", w.node)
	} else {
		r.log.Info("route replaced", "dst", w.dst, "via", w.gw, "link", w.linkIndex, "node", w.node,
			"was_via", p.was.Gw, "was_link", p.was.LinkIndex)
	}
	return nil
}

// delete removes a route the agent no longer wants; one already gone is fine.
// Equivalent to: ip route del DST via GW proto 78
func (r *routeSyncer) delete(h *netlink.Route) error {
	if dst, ok := routeDst(h); ok {
		r.own.add(dst, time.Now()) // before the event can arrive
	}
	err := r.h.RouteDel(h)
	if err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("ip route del %s via %s proto %d: %w", h.Dst, h.Gw, routeProtocol, err)
	}
	r.log.Info("route deleted", "dst", h.Dst, "via", h.Gw, "link", h.LinkIndex)
	return nil
}

// diffRoutes compares the wanted routes with the kernel's proto-78 routes.
// A wanted destination listed twice keeps its first route; the rest go.
func diffRoutes(want map[netip.Prefix]route, have []netlink.Route) routeDiff {
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
		if routeMatches(h, w) {
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

// routeMatches reports whether h already is the wanted route w.
func routeMatches(h *netlink.Route, w route) bool {
	gw, ok := netip.AddrFromSlice(h.Gw)
	return ok && gw.Unmap() == w.gw && h.LinkIndex == w.linkIndex && len(h.MultiPath) == 0
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
