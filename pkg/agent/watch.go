package agent

import (
	"context"
	"time"

	"github.com/nodebridge/nodebridge/pkg/routes"
)

// keepSubscribed runs a netlink subscription until ctx ends, subscribing
// again when it breaks (a full socket buffer drops events): the reconcile it
// pokes then catches up on whatever was lost.
func (a *agent) keepSubscribed(ctx context.Context, what string, sub func(done <-chan struct{}) error) {
	for ctx.Err() == nil {
		sctx, cancel := context.WithCancel(ctx)
		err := sub(sctx.Done())
		cancel()
		if ctx.Err() != nil {
			return
		}
		a.log.Warn("netlink subscription ended; subscribing again", "events", what, "err", err)
		a.poke()
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// routeEvents pokes the loop when a proto-78 route disappears and the
// agent did not delete it, until done or the subscription breaks.
func (a *agent) routeEvents(done <-chan struct{}) error {
	return a.routes.WatchDeletes(done, a.ns, a.poke)
}

// linkEvents pokes the loop when an underlay link is up, or a VXLAN
// device changes state or is deleted, until done or the subscription
// breaks.
func (a *agent) linkEvents(done <-chan struct{}) error {
	return routes.WatchLinks(done, a.ns, a.wakesOnLink, a.pokeTunnels)
}

// wakesOnLink reports whether a link event calls for a reconcile: an
// underlay link up (or any link, while the underlay is not known), or any
// event of a VXLAN device.
func (a *agent) wakesOnLink(index int, up bool) bool {
	return (up && a.isUnderlayLink(index)) || a.isTunnel(index)
}

// addrEvents pokes the loop when an address of an underlay link is added
// or removed (the node re-addressed: its routes through the old address
// went without an event), until done or the subscription breaks.
func (a *agent) addrEvents(done <-chan struct{}) error {
	return routes.WatchAddrs(done, a.ns, a.isUnderlayLink, a.poke)
}

// isUnderlayLink reports whether index is an underlay link, or whether the
// underlay is not known yet.
func (a *agent) isUnderlayLink(index int) bool {
	l := a.links.Load().([2]int)
	return (l[v4] == 0 && l[v6] == 0) || index == l[v4] || index == l[v6]
}

// neighEvents pokes the loop when an entry of a VXLAN device is deleted,
// until done or the subscription breaks.
func (a *agent) neighEvents(done <-chan struct{}) error {
	return routes.WatchNeighDeletes(done, a.ns, a.isTunnel, a.pokeTunnels)
}

// pokeTunnels marks the VXLAN devices for a full sync and pokes the loop.
func (a *agent) pokeTunnels() {
	a.tunnelsDirty.Store(true)
	a.poke()
}

// isTunnel reports whether index is a VXLAN device of the agent.
func (a *agent) isTunnel(index int) bool {
	l := a.tunnelLinks.Load().([2]int)
	return index != 0 && (index == l[v4] || index == l[v6])
}
