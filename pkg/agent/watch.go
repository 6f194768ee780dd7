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

// linkEvents pokes the loop when an underlay link is up, until done or the
// subscription breaks.
func (a *agent) linkEvents(done <-chan struct{}) error {
	return routes.WatchLinksUp(done, a.ns, a.isUnderlay, a.poke)
}

// isUnderlay reports whether index is an underlay link, or whether the
// underlay is not known yet (any link coming up may be it).
func (a *agent) isUnderlay(index int) bool {
	l := a.links.Load().([2]int)
	return (l[v4] == 0 && l[v6] == 0) || index == l[v4] || index == l[v6]
}
