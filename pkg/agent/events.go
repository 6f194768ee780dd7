package agent

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
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

// lastError keeps the error a subscription's callback reported last.
type lastError struct {
	mu  sync.Mutex
	err error
}

func (l *lastError) set(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.err = err
}

func (l *lastError) get() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// routeEvents pokes the loop when a proto-78 route disappears (an operator
// deleting it, or the kernel dropping it), not when the agent deleted it,
// until done or the subscription breaks. Equivalent to: ip monitor route
func (a *agent) routeEvents(done <-chan struct{}) error {
	ch := make(chan netlink.RouteUpdate, 256)
	var last lastError
	opts := netlink.RouteSubscribeOptions{Namespace: a.ns, ErrorCallback: last.set}
	if err := netlink.RouteSubscribeWithOptions(ch, done, opts); err != nil {
		return fmt.Errorf("subscribe to route events: %w", err)
	}
	for u := range ch {
		if u.Type != unix.RTM_DELROUTE || u.Protocol != routeProtocol {
			continue
		}
		if dst, ok := routeDst(&u.Route); ok && a.routes.own.take(dst, time.Now()) {
			continue // the agent's own deletion: nothing to repair
		}
		a.poke()
	}
	return last.get()
}

// linkEvents pokes the loop when an underlay link is up (after a flap the
// kernel has dropped the routes through it), until done or the
// subscription breaks. Equivalent to: ip monitor link
func (a *agent) linkEvents(done <-chan struct{}) error {
	ch := make(chan netlink.LinkUpdate, 256)
	var last lastError
	opts := netlink.LinkSubscribeOptions{Namespace: a.ns, ErrorCallback: last.set}
	if err := netlink.LinkSubscribeWithOptions(ch, done, opts); err != nil {
		return fmt.Errorf("subscribe to link events: %w", err)
	}
	for u := range ch {
		attrs := u.Attrs()
		if u.Header.Type == unix.RTM_NEWLINK && attrs.Flags&net.FlagUp != 0 && a.isUnderlay(attrs.Index) {
			a.poke()
		}
	}
	return last.get()
}

// isUnderlay reports whether index is an underlay link, or whether the
// underlay is not known yet (any link coming up may be it).
func (a *agent) isUnderlay(index int) bool {
	l := a.links.Load().([2]int)
	return (l[v4] == 0 && l[v6] == 0) || index == l[v4] || index == l[v6]
}
