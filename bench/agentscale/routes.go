package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/nodebridge/nodebridge/pkg/agent"
	"github.com/nodebridge/nodebridge/pkg/routes"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// routeWatch reads the routes of the node netns over a netlink socket
// opened in it, so polling costs no exec and never enters the netns.
type routeWatch struct {
	h  *netlink.Handle
	ns netns.NsHandle
	// anyProto counts every route into the cluster CIDR via a gateway,
	// whatever its protocol: flannel's routes carry none of their own.
	// Otherwise only the agent's proto-78 routes count.
	anyProto bool
}

// openRoutes opens a netlink handle inside the named netns.
func openRoutes(name string) (*routeWatch, error) {
	ns, err := netns.GetFromName(name)
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", name, err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		_ = ns.Close() // the open error is the one worth reporting
		return nil, fmt.Errorf("open netlink handle in netns %s: %w", name, err)
	}
	return &routeWatch{h: h, ns: ns}, nil
}

// close releases the netlink socket and the netns handle; a failed close
// of a descriptor leaves nothing behind to report.
func (w *routeWatch) close() {
	w.h.Close()
	_ = w.ns.Close()
}

// snapshot returns the counted IPv4 routes of the main table, destination
// to gateway.
// Equivalent to: ip route show proto 78 (or, with anyProto, ip route show
// to root 10.0.0.0/8, keeping those with a via)
func (w *routeWatch) snapshot() (routeSet, error) {
	filter, mask := &netlink.Route{Protocol: routes.Protocol}, uint64(netlink.RT_FILTER_PROTOCOL)
	if w.anyProto {
		filter, mask = &netlink.Route{}, 0 // no filter: netlink v1.3.1 needs a non-nil one
	}
	rs, err := w.h.RouteListFiltered(netlink.FAMILY_V4, filter, mask)
	if err != nil {
		return nil, fmt.Errorf("list IPv4 routes (any protocol %v): %w", w.anyProto, err)
	}
	return podRoutes(rs, w.anyProto), nil
}

// protocols names the protocols of the counted routes, e.g. "78" or
// "boot": the agent marks its routes 78, flannel leaves the kernel's
// default.
// Equivalent to: ip route show to root 10.0.0.0/8 (the proto column)
func (w *routeWatch) protocols() ([]string, error) {
	rs, err := w.h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{}, 0)
	if err != nil {
		return nil, fmt.Errorf("list IPv4 routes: %w", err)
	}
	return routeProtocols(rs), nil
}

// routeProtocols names, sorted and once each, the protocols of the routes
// podRoutes counts with inClusterOnly.
func routeProtocols(rs []netlink.Route) []string {
	var out []string
	for _, r := range rs {
		if len(podRoutes([]netlink.Route{r}, true)) == 0 {
			continue
		}
		if p := r.Protocol.String(); !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// podRoutes keeps the routes via a gateway, and with inClusterOnly only
// those to a prefix inside the cluster CIDR, as destination to gateway.
func podRoutes(rs []netlink.Route, inClusterOnly bool) routeSet {
	have := make(routeSet, len(rs))
	for _, r := range rs {
		if r.Dst == nil {
			continue
		}
		dst, ok := netip.AddrFromSlice(r.Dst.IP)
		gw, gok := netip.AddrFromSlice(r.Gw)
		ones, _ := r.Dst.Mask.Size()
		p := netip.PrefixFrom(dst.Unmap(), ones)
		if !ok || !gok || (inClusterOnly && !inside(p, clusterCIDR)) {
			continue
		}
		have[p] = gw.Unmap()
	}
	return have
}

// inside reports whether p lies within outer.
func inside(p, outer netip.Prefix) bool {
	return p.Bits() >= outer.Bits() && outer.Contains(p.Addr())
}

// sameRoutes reports whether have is exactly want: same destinations, each
// via the same gateway.
func sameRoutes(have, want routeSet) bool {
	if len(have) != len(want) {
		return false
	}
	for dst, gw := range want {
		if got, ok := have[dst]; !ok || got != gw {
			return false
		}
	}
	return true
}

// match is when a poll first saw the wanted routes, and how many routes the
// last poll saw (the figure to report when they never matched).
type match struct {
	at   time.Time
	seen int
	err  error
}

// subscribe starts receiving the netns's route events; stop ends it.
// Equivalent to: ip -n NODE monitor route
func (w *routeWatch) subscribe() (<-chan netlink.RouteUpdate, func(), error) {
	ch, done := make(chan netlink.RouteUpdate, 64), make(chan struct{})
	err := netlink.RouteSubscribeWithOptions(ch, done, netlink.RouteSubscribeOptions{Namespace: &w.ns})
	if err != nil {
		return nil, nil, fmt.Errorf("subscribe to route events: %w", err)
	}
	return ch, func() { close(done) }, nil
}

// waitEvent waits until the routes are exactly want, listing them after
// every route event and every interval, and reports when: at the arrival
// of the event after which they were, or, when a listing on the interval
// (or the first one) found them so, at the end of that listing. A lost
// event therefore delays the answer by an interval at most, and with no
// events (nil) it polls.
func (w *routeWatch) waitEvent(ctx context.Context, want routeSet, events <-chan netlink.RouteUpdate, interval time.Duration) match {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var m match
	var eventAt time.Time // zero: the listing was not prompted by an event
	for {
		have, err := w.snapshot()
		if err != nil {
			m.err = err
			return m
		}
		m.seen = len(have)
		if sameRoutes(have, want) {
			if m.at = eventAt; m.at.IsZero() {
				m.at = time.Now()
			}
			return m
		}
		select {
		case <-ctx.Done():
			m.err = fmt.Errorf("wait for %d routes (last list saw %d): %w", len(want), m.seen, ctx.Err())
			return m
		case _, ok := <-events:
			if !ok {
				events = nil // the subscription ended: the ticker carries on
			}
			eventAt = time.Now()
		case <-tick.C:
			eventAt = time.Time{}
		}
	}
}

// tunnel lists the forwarding entries and permanent neighbours of the
// agent's IPv4 VXLAN device; both empty when it is not there.
// Equivalent to: bridge fdb show dev nb.vxlan; ip neigh show dev nb.vxlan nud permanent
func (w *routeWatch) tunnel() (tunnelSet, error) {
	t := tunnelSet{fdb: map[string]netip.Addr{}, neigh: map[netip.Addr]string{}}
	link, err := w.h.LinkByName(agent.TunnelV4)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return t, nil
	}
	if err != nil {
		return t, fmt.Errorf("find %s: %w", agent.TunnelV4, err)
	}
	fdb, err := w.h.NeighList(link.Attrs().Index, unix.AF_BRIDGE)
	if err != nil {
		return t, fmt.Errorf("list the fdb of %s: %w", agent.TunnelV4, err)
	}
	for _, n := range fdb {
		if ip, ok := netip.AddrFromSlice(n.IP); ok {
			t.fdb[n.HardwareAddr.String()] = ip.Unmap()
		}
	}
	neigh, err := w.h.NeighList(link.Attrs().Index, netlink.FAMILY_V4)
	if err != nil {
		return t, fmt.Errorf("list the neighbours of %s: %w", agent.TunnelV4, err)
	}
	for _, n := range neigh {
		if ip, ok := netip.AddrFromSlice(n.IP); ok && n.State == netlink.NUD_PERMANENT {
			t.neigh[ip.Unmap()] = n.HardwareAddr.String()
		}
	}
	return t, nil
}

// waitTunnel polls the device's entries until they are exactly want and
// returns when, at the end of the listing that found them so.
func (w *routeWatch) waitTunnel(ctx context.Context, want tunnelSet, interval time.Duration) (time.Time, error) {
	for {
		have, err := w.tunnel()
		if err != nil {
			return time.Time{}, err
		}
		if maps.Equal(have.fdb, want.fdb) && maps.Equal(have.neigh, want.neigh) {
			return time.Now(), nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("wait for %d fdb entries and %d neighbours (have %d and %d): %w",
				len(want.fdb), len(want.neigh), len(have.fdb), len(have.neigh), ctx.Err())
		case <-time.After(interval):
		}
	}
}
