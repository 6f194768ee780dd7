package main

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// agentProto is the route protocol the agent marks its routes with.
const agentProto = 78

// routeWatch reads the agent's routes of the node netns over a netlink
// socket opened in it, so polling costs no exec and never enters the netns.
type routeWatch struct {
	h  *netlink.Handle
	ns netns.NsHandle
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

// snapshot returns the proto-78 IPv4 routes, destination to gateway.
// Equivalent to: ip route show proto 78
func (w *routeWatch) snapshot() (routeSet, error) {
	rs, err := w.h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: agentProto}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return nil, fmt.Errorf("list routes of protocol %d: %w", agentProto, err)
	}
	have := make(routeSet, len(rs))
	for _, r := range rs {
		if r.Dst == nil {
			continue
		}
		dst, ok := netip.AddrFromSlice(r.Dst.IP)
		gw, gok := netip.AddrFromSlice(r.Gw)
		ones, _ := r.Dst.Mask.Size()
		if ok && gok {
			have[netip.PrefixFrom(dst.Unmap(), ones)] = gw.Unmap()
		}
	}
	return have, nil
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

// waitMatch polls every interval until the routes are exactly want, ctx
// ends or a read fails.
func (w *routeWatch) waitMatch(ctx context.Context, want routeSet, interval time.Duration) match {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var m match
	for {
		have, err := w.snapshot()
		if err != nil {
			m.err = err
			return m
		}
		m.seen = len(have)
		if sameRoutes(have, want) {
			m.at = time.Now()
			return m
		}
		select {
		case <-ctx.Done():
			m.err = fmt.Errorf("wait for %d routes (last poll saw %d): %w", len(want), m.seen, ctx.Err())
			return m
		case <-tick.C:
		}
	}
}
