package routes

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ownDeletes remembers the routes the Syncer deleted itself, so that the
// route event each deletion raises does not poke another reconcile: only
// a deletion by someone else (an operator, the kernel) needs one.
type ownDeletes struct {
	mu   sync.Mutex
	dsts map[netip.Prefix]time.Time // when deleted
}

// ownDeleteTTL bounds how long a deletion's event is waited for; the
// event comes at once, so an entry older than this missed it.
const ownDeleteTTL = 5 * time.Second

// add records that the Syncer deleted the route to dst at now.
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

// take reports whether the deletion of dst seen at now is one the Syncer
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

// WatchDeletes calls poke when a proto-78 route of the netns ns (nil: the
// current one) disappears, an operator deleting it or the kernel dropping
// it, but not when s deleted it, until done or the subscription breaks.
// Equivalent to: ip monitor route
func (s *Syncer) WatchDeletes(done <-chan struct{}, ns *netns.NsHandle, poke func()) error {
	ch := make(chan netlink.RouteUpdate, 256)
	var last lastError
	opts := netlink.RouteSubscribeOptions{Namespace: ns, ErrorCallback: last.set}
	if err := netlink.RouteSubscribeWithOptions(ch, done, opts); err != nil {
		return fmt.Errorf("subscribe to route events: %w", err)
	}
	for u := range ch {
		if u.Type != unix.RTM_DELROUTE || u.Protocol != Protocol {
			continue
		}
		if dst, ok := routeDst(&u.Route); ok && s.own.take(dst, time.Now()) {
			continue // our own deletion: nothing to repair
		}
		poke()
	}
	return last.get()
}

// WatchLinks calls poke when a link of the netns ns (nil: the current one)
// changes and wake(index, up) holds: a link is up (after a flap the kernel
// has dropped the routes through it) or down, or deleted (up false), until
// done or the subscription breaks.
// Equivalent to: ip monitor link
func WatchLinks(done <-chan struct{}, ns *netns.NsHandle, wake func(index int, up bool) bool, poke func()) error {
	ch := make(chan netlink.LinkUpdate, 256)
	var last lastError
	opts := netlink.LinkSubscribeOptions{Namespace: ns, ErrorCallback: last.set}
	if err := netlink.LinkSubscribeWithOptions(ch, done, opts); err != nil {
		return fmt.Errorf("subscribe to link events: %w", err)
	}
	for u := range ch {
		attrs := u.Attrs()
		up := u.Header.Type == unix.RTM_NEWLINK && attrs.Flags&net.FlagUp != 0
		if wake(attrs.Index, up) {
			poke()
		}
	}
	return last.get()
}

// WatchAddrs calls poke when an address of a link for which
// watched(index) holds is added or removed, until done or the subscription
// breaks. Routes through a gateway that removal made unreachable go
// without a route event.
// Equivalent to: ip monitor address
func WatchAddrs(done <-chan struct{}, ns *netns.NsHandle, watched func(index int) bool, poke func()) error {
	ch := make(chan netlink.AddrUpdate, 256)
	var last lastError
	opts := netlink.AddrSubscribeOptions{Namespace: ns, ErrorCallback: last.set}
	if err := netlink.AddrSubscribeWithOptions(ch, done, opts); err != nil {
		return fmt.Errorf("subscribe to address events: %w", err)
	}
	for u := range ch {
		if watched(u.LinkIndex) {
			poke()
		}
	}
	return last.get()
}

// WatchNeighDeletes calls poke when a neighbour or forwarding entry of a
// link for which watched(index) holds is deleted (by hand, or by the
// kernel with its link), until done or the subscription breaks. The
// Syncer's own deletions poke too: the reconcile after them finds nothing
// to do.
// Equivalent to: ip monitor neigh
func WatchNeighDeletes(done <-chan struct{}, ns *netns.NsHandle, watched func(index int) bool, poke func()) error {
	ch := make(chan netlink.NeighUpdate, 256)
	var last lastError
	opts := netlink.NeighSubscribeOptions{Namespace: ns, ErrorCallback: last.set}
	if err := netlink.NeighSubscribeWithOptions(ch, done, opts); err != nil {
		return fmt.Errorf("subscribe to neighbour events: %w", err)
	}
	for u := range ch {
		if u.Type == unix.RTM_DELNEIGH && watched(u.LinkIndex) {
			poke()
		}
	}
	return last.get()
}
