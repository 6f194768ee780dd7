package agent

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"slices"
	"time"

	"github.com/nodebridge/nodebridge/pkg/routes"
	"github.com/vishvananda/netlink"

	corev1 "k8s.io/api/core/v1"
)

// applied is one reconcile's plan: the desired state and what it was
// computed from.
type applied struct {
	d           desired
	underlays   [2]*routes.Underlay
	underlayErr error // a family without underlay: applied without it, then reported
	ownNode     *corev1.Node
	ours        []netlink.Route // the agent's routes as the plan read them
}

// plan finds the own Node and the node's addressing and computes the
// desired state from all Nodes and the cluster CIDRs; fresh reads the host
// even when the cache holds it unchanged.
func (a *agent) plan(cidrs []netip.Prefix, nodes []*corev1.Node, fresh bool) (*applied, error) {
	st := &applied{}
	for _, n := range nodes {
		if n.Name == a.cfg.NodeName {
			st.ownNode = n
		}
	}
	if st.ownNode == nil {
		return nil, errNoOwnNode
	}
	own := readNode(st.ownNode)
	if skips := checkOwn(&own, byFamily(cidrs)); len(skips) > 0 {
		a.report(skips) // before the underlay: nothing is written with these
		return nil, ownError(skips)
	}
	if len(own.podCIDRs) == 0 {
		return nil, errNoPodCIDR // before the underlay: a Node may get its IPs later too
	}
	hs, err := a.host.get(fresh)
	if err != nil {
		return nil, err
	}
	ul, err := underlaysOf(own.ips, hs.Addrs)
	if err != nil {
		a.reconnectAPI(err)
	}
	if ul[v4] == nil && ul[v6] == nil {
		return nil, err
	}
	st.underlays, st.underlayErr, st.ours = ul, err, hs.Ours
	st.d, err = computeDesired(input{own: a.cfg.NodeName, nodes: nodes, clusterCIDRs: cidrs, underlays: ul, host: hs, backend: a.cfg.Backend})
	a.report(st.d.skipped)
	if err != nil {
		return nil, err
	}
	a.metrics.update(func(m *Metrics) {
		m.peers, m.routesWanted, m.peersSkipped = st.d.peers, len(st.d.routes), len(st.d.skipped)
		m.tunnelPeers = 0
		for _, t := range st.d.tunnels {
			if t != nil {
				m.tunnelPeers += len(t.peers)
			}
		}
	})
	return st, nil
}

// reconnectInterval spaces the API reconnections reconnectAPI makes.
const reconnectInterval = 10 * time.Second

// reconnectAPI closes the API connections, at most once per
// reconnectInterval, when an own InternalIP is on no link: the node was
// re-addressed, and a watch on a connection from the old address hears
// nothing more, the Node update with the new InternalIP included.
func (a *agent) reconnectAPI(why error) {
	if a.reconnect == nil || time.Since(a.reconnected) < reconnectInterval {
		return
	}
	a.reconnected = time.Now()
	a.log.Info("closing the API connections: an own InternalIP is on no link, the node may have a new address", "why", why)
	a.reconnect()
}

// applyRules keeps the FORWARD accepts for the cluster CIDRs in place.
func (a *agent) applyRules(ctx context.Context, st *applied, verify bool) error {
	err := a.rules.sync(ctx, st.d.clusterCIDRs, verify)
	missing := len(a.rules.missing)
	a.metrics.update(func(m *Metrics) { m.rulesSkipped = missing })
	return err
}

// applyConflist writes the conflist when its bytes change; with a
// --conflist-configmap it reads the template first on verify passes (each
// resync) and until a first read succeeds.
func (a *agent) applyConflist(ctx context.Context, st *applied, verify bool) error {
	if a.conf != nil && (verify || !a.conf.read) {
		a.refreshConf(ctx, st.ownNode)
	}
	mtu := podMTU(a.cfg.Backend, st.underlays)
	conf, ok, err := a.renderConf(&st.d, mtu)
	if err != nil {
		return err
	}
	if !ok {
		return a.keepUnread()
	}
	changed, err := writeIfChanged(a.cfg.confPath(), conf)
	if changed {
		a.log.Info("conflist written", "path", a.cfg.confPath(), "podCIDRs", st.d.podCIDRs,
			"clusterCIDRs", st.d.clusterCIDRs, "mtu", mtu, "template", a.conf != nil && a.conf.tmpl != nil)
	}
	return err
}

// applyTunnels makes each family's VXLAN device hold its peers, or deletes
// it when the family tunnels to none (and --backend is not vxlan), then
// points the routes through it at its index. A device synced by an earlier
// reconcile with the same plan is left alone unless verify, or an event
// (an entry or the device deleted) marked the tunnels dirty. A family
// whose device fails loses its tunnel routes for this reconcile.
func (a *agent) applyTunnels(st *applied, verify bool) error {
	dirty := a.tunnelsDirty.Swap(false) || verify
	var errs []error
	var idx [2]int
	for f := range st.d.tunnels {
		plan, u, last := st.d.tunnels[f], st.underlays[f], a.tunnels[f]
		if plan == nil || u == nil {
			if dirty || !last.known || last.t != nil {
				_, err := a.routes.DeleteTunnel(tunnelName(f))
				errs = append(errs, err)
				a.tunnels[f] = tunnelState{known: err == nil}
			}
			continue
		}
		t := &routes.Tunnel{Name: tunnelName(f), VNI: a.cfg.VXLANVNI, Port: a.cfg.VXLANPort, Local: u.Addr,
			Underlay: u, VTEP: plan.vtep, Peers: plan.peers}
		if !dirty && last.known && last.t != nil && sameTunnel(last.t, t) {
			idx[f] = last.index
			continue
		}
		i, changes, err := a.routes.SyncTunnel(t)
		a.metrics.update(func(m *Metrics) { m.routeChanges += changes })
		a.tunnels[f] = tunnelState{known: err == nil, t: t, index: i}
		errs = append(errs, err)
		idx[f] = i
	}
	a.tunnelLinks.Store(idx)
	for dst, r := range st.d.routes {
		if !r.Onlink {
			continue
		}
		if r.LinkIndex = idx[familyOf(dst.Addr())]; r.LinkIndex == 0 {
			delete(st.d.routes, dst) // no device: the route cannot be made
			continue
		}
		st.d.routes[dst] = r
	}
	return errors.Join(errs...)
}

// tunnelState is what a family's VXLAN device is known to be: when known,
// t as synced without error (its device index), or no device at all (t
// nil); unknown until a sync or delete succeeds.
type tunnelState struct {
	known bool
	t     *routes.Tunnel
	index int
}

// sameTunnel reports whether two tunnels want the same device and entries.
func sameTunnel(a, b *routes.Tunnel) bool {
	if a.Name != b.Name || a.VNI != b.VNI || a.Port != b.Port || a.Local != b.Local || a.VTEP != b.VTEP ||
		!sameUnderlay(a.Underlay, b.Underlay) || len(a.Peers) != len(b.Peers) {
		return false
	}
	for i := range a.Peers {
		p, q := &a.Peers[i], &b.Peers[i]
		if p.Node != q.Node || p.VTEP != q.VTEP || p.Remote != q.Remote || !bytes.Equal(p.MAC, q.MAC) {
			return false
		}
	}
	return true
}

// sameUnderlay compares what a tunnel uses of its underlay.
func sameUnderlay(a, b *routes.Underlay) bool {
	return a.LinkIndex == b.LinkIndex && a.MTU == b.MTU && a.Addr == b.Addr
}

// applyRoutes converges the proto-78 routes from the plan's read of them
// (a dump, or the host cache's copy while nothing changed). A route someone deletes meanwhile raises an
// event, which reconciles again. Another protocol's route going where ours
// would is replaced by ours (taken over); one going elsewhere was skipped
// by the plan.
func (a *agent) applyRoutes(st *applied) error {
	have := append(slices.Clip(st.ours), st.d.takeover...)
	installed, changes, err := a.routes.SyncWith(st.d.routes, have)
	a.metrics.update(func(m *Metrics) {
		m.routesInstalled = installed
		m.routeChanges += changes
	})
	return err
}

// report logs each rejected podCIDR once, counts the current rejections by
// reason, and records an Event for each new one; a rejection that ended is
// forgotten, so one that comes back is reported again.
func (a *agent) report(skips []skip) {
	now := make(map[string]bool, len(skips))
	byReason := map[string]int{}
	for _, s := range skips {
		key := s.String()
		now[key] = true
		byReason[s.reason]++
		if !a.skipped[key] {
			a.log.Warn("podCIDR rejected", "node", s.node, "podCIDR", s.podCIDR, "reason", s.reason, "rule", s.detail, "own", s.own)
		}
	}
	a.skipped = now
	a.metrics.update(func(m *Metrics) { m.rejected = byReason })
	a.events.record(skips)
}
