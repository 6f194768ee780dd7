package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nodebridge/nodebridge/pkg/routes"
	"github.com/nodebridge/nodebridge/pkg/rtnl"
	"github.com/nodebridge/nodebridge/pkg/rules"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
)

// agent is one running nodebridge-agent.
type agent struct {
	cfg     Config
	log     *slog.Logger
	nodes   func() ([]*corev1.Node, error) // the Node cache; never an API call
	host    hostCache                      // the node netns's links, addresses and routes as last read, while unchanged; the loop's
	routes  *routes.Syncer
	rules   ruleSyncer
	status  *statusPatcher // nil: no API server (tests of the host side)
	metrics *Metrics
	ready   *readiness
	live    *liveness
	cidrs   clusterCIDRs    // touched by the loop only
	events  *eventRecorder  // nil: no API server (tests of the host side)
	ns      *netns.NsHandle // netns of the netlink subscriptions; nil: the current one
	kick    chan struct{}   // capacity 1: pokes coalesce
	links   atomic.Value    // [2]int: underlay link indexes, for link event filtering
	// The VXLAN devices: their indexes for event filtering ([2]int), a
	// mark set by events that something of theirs changed, and, the
	// loop's own, what each family's is known to be.
	tunnelLinks  atomic.Value
	tunnelsDirty atomic.Bool
	tunnels      [2]tunnelState
	skipped      map[string]bool // rejections already logged
	shadows      *[]string       // CNI configs sorting before ours, as last reported; nil: not checked yet
	conf         *confSource     // the conflist template's ConfigMap; nil: none, the defaults
	// reconnect closes the API connections (Deps.Reconnect); reconnected
	// is when it last did. The loop's own.
	reconnect   func()
	reconnected time.Time
}

// newAgent wires an agent for the host reached through h and rt.
func newAgent(cfg Config, log *slog.Logger, h *netlink.Handle, rt *rtnl.Conn) *agent {
	a := &agent{
		cfg: cfg, log: log,
		host:    hostCache{rt: rt},
		routes:  routes.NewSyncer(h, rt, log),
		rules:   ruleSyncer{network: cfg.NetworkName, log: log},
		metrics: &Metrics{},
		ready:   &readiness{reason: "starting"},
		live:    newLiveness(cfg.Resync, time.Now),
		cidrs:   clusterCIDRs{known: cfg.ClusterCIDRs},
		kick:    make(chan struct{}, 1),
		skipped: map[string]bool{},
	}
	a.links.Store([2]int{})
	a.tunnelLinks.Store([2]int{})
	return a
}

// poke asks the loop for a reconcile; pokes made before it runs coalesce.
func (a *agent) poke() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// Deps are what the agent works with, built by cmd.
type Deps struct {
	Log     *slog.Logger
	Netlink *netlink.Handle      // the node netns
	Rtnl    *rtnl.Conn           // the node netns, a blocking socket for reading and changing its routes
	Rules   rules.ClusterBackend // the FORWARD accepts, from rules.SelectCluster with Config.IPMasqBackend
	Client  kubernetes.Interface // Run only: Uninstall needs no API server
	Metrics *Metrics             // fed by Client's transport too; nil: a new one
	Version string               // nodebridge_build_info{version}
	// Policy enforces NetworkPolicy (Config.NetworkPolicy); nil: never.
	Policy rules.PolicyBackend
	// Reconnect closes every connection of Client, so that its watches
	// dial again from the node's current address; nil: never.
	Reconnect func()
}

// Run runs the agent until ctx ends, then returns nil and leaves the
// routes, rules and conflist in place, so a restart does not disturb pod
// traffic. It fails only on a bad config or when it cannot start.
func Run(ctx context.Context, cfg Config, d Deps) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	a := newAgent(cfg, d.Log, d.Netlink, d.Rtnl)
	a.rules.backend, a.reconnect = d.Rules, d.Reconnect
	if d.Metrics != nil {
		a.metrics = d.Metrics
	}
	client, logger := d.Client, d.Log
	a.status = &statusPatcher{client: client, node: cfg.NodeName}
	a.events = newEventRecorder(client, cfg.NodeName, a.metrics, logger)
	if cfg.ConflistConfigMap != "" {
		ns, name, _ := strings.Cut(cfg.ConflistConfigMap, "/")
		a.conf = newConfSource(client, ns, name, cfg.ConflistKey)
	}
	if len(cfg.ClusterCIDRs) == 0 {
		a.cidrs.discover = func(ctx context.Context) ([]netip.Prefix, error) { return discoverClusterCIDRs(ctx, client) }
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wait, err := serve(ctx, cfg.MetricsAddr, newMux(a.ready, a.live, newRegistry(a.metrics, d.Version), logger), logger)
	if err != nil {
		return err
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- wait(); cancel() }()
	var pwg sync.WaitGroup
	switch {
	case d.Policy == nil:
	case cfg.NetworkPolicy:
		ps := newPolicySync(cfg.NodeName, d.Policy, a.events, d.Log, a.metrics, cfg.Resync)
		pwg.Add(1)
		go func() { defer pwg.Done(); ps.run(ctx, client) }()
	default:
		if err := d.Policy.DeletePolicy(ctx); err != nil {
			d.Log.Warn("network policy off: removing its table failed", "err", err)
		}
	}
	err = a.runWatching(ctx, client)
	cancel()
	pwg.Wait()
	return errors.Join(err, <-serveErr)
}

// runWatching starts the Node cache and the netlink watchers and runs the
// reconcile loop once the cache holds every Node: before that, a missing
// Node would look deleted and its routes would go.
func (a *agent) runWatching(ctx context.Context, client kubernetes.Interface) error {
	nc := newNodeCache(a.cfg.NodeName, a.poke)
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Add(1)
	go func() { defer wg.Done(); nc.run(ctx, client) }()
	if a.events != nil {
		wg.Add(1)
		go func() { defer wg.Done(); a.events.run(ctx) }()
	}
	a.log.Info("agent starting", "node", a.cfg.NodeName, "network", a.cfg.NetworkName, "conf", a.cfg.confPath())
	a.ready.set(false, "waiting for the Node list")
	select {
	case <-ctx.Done():
		return nil
	case <-nc.synced:
	}
	a.nodes = nc.list
	wg.Add(3)
	go func() { defer wg.Done(); a.keepSubscribed(ctx, "route", a.routeEvents) }()
	go func() { defer wg.Done(); a.keepSubscribed(ctx, "link", a.linkEvents) }()
	go func() { defer wg.Done(); a.keepSubscribed(ctx, "address", a.addrEvents) }()
	if a.cfg.tunnels() {
		wg.Add(1)
		go func() { defer wg.Done(); a.keepSubscribed(ctx, "neighbour", a.neighEvents) }()
	}
	a.loop(ctx)
	a.log.Info("agent stopping; routes, rules and conflist stay in place")
	return nil
}
