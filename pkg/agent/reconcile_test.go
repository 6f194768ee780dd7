package agent

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nodebridge/nodebridge/pkg/rules"
	"github.com/prometheus/client_golang/prometheus"
)

// metricsOf parses the exposition of m alone, from a pedantic registry,
// which also checks that what m describes is what it collects.
func metricsOf(t *testing.T, m *Metrics) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	return parseExposition(t, scrape(t, reg))
}

// waitReason polls until /readyz's reason contains want.
func waitReason(t *testing.T, a *agent, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ok, reason := a.ready.get()
		if !ok && strings.Contains(reason, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ready %v reason %q, want not ready with %q", ok, reason, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Until the cluster CIDRs are known the agent is not ready, says why once,
// and touches nothing: no rules, no conflist, no Node condition. Once
// known, an own podCIDR outside them keeps it so, with an Event on the own
// Node. No netlink handle: reaching the host would panic.
func TestReconcileWaitsForClusterCIDR(t *testing.T) {
	cfg := Defaults()
	cfg.NodeName, cfg.CNIConfDir, cfg.Resync = "a", t.TempDir(), 10*time.Millisecond
	var logs syncBuffer
	a := newAgent(cfg, slog.New(slog.NewTextHandler(&logs, nil)), nil, nil)
	fake := &rules.Fake{}
	a.rules.backend = fake
	src := &staticNodes{}
	own := node("a", []string{"10.99.0.0/24"}, "198.18.0.11")
	own.UID = "uid-a"
	src.set(own, node("b", []string{"10.244.1.0/24"}, "198.18.0.12"))
	a.nodes = src.list
	cs := namingClientset()
	a.status = &statusPatcher{client: cs, node: "a"}
	a.events = newEventRecorder(cs, "a", a.metrics, a.log)
	var found atomic.Bool
	discoveries := atomic.Int32{}
	a.cidrs.discover = func(context.Context) ([]netip.Prefix, error) {
		discoveries.Add(1)
		if !found.Load() {
			return nil, errors.New(`configmaps "kubeadm-config" not found`)
		}
		return pfx(t, "10.244.0.0/16"), nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a.loop(ctx) }()
	go func() { defer wg.Done(); a.events.run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })

	waitReason(t, a, "cluster CIDR unknown")
	for discoveries.Load() < 10 { // resyncs and retries keep trying
		time.Sleep(10 * time.Millisecond)
	}
	if n := strings.Count(logs.String(), "msg=reconcile"); n != 1 {
		t.Errorf("%d reconcile log lines for a lasting unknown cluster CIDR, want 1:\n%s", n, logs.String())
	}
	if got := metricsOf(t, a.metrics)["nodebridge_agent_cluster_cidr_known"]; got != 0 {
		t.Errorf("cluster_cidr_known %v, want 0", got)
	}

	found.Store(true)
	waitReason(t, a, "own podCIDR rejected: 10.99.0.0/24: outside cluster CIDR 10.244.0.0/16")
	evs := waitEvents(t, cs, 1)
	if len(evs) != 1 || evs[0].InvolvedObject.UID != "uid-a" || !strings.Contains(evs[0].Message, "10.99.0.0/24") {
		t.Errorf("Events: %+v", evs)
	}
	m := metricsOf(t, a.metrics)
	if m["nodebridge_agent_cluster_cidr_known"] != 1 || m[`nodebridge_agent_podcidr_rejected{reason="outside-cluster-cidr"}`] != 1 {
		t.Errorf("metrics: known %v, rejected outside %v", m["nodebridge_agent_cluster_cidr_known"],
			m[`nodebridge_agent_podcidr_rejected{reason="outside-cluster-cidr"}`])
	}
	if _, err := os.Stat(a.cfg.confPath()); !errors.Is(err, os.ErrNotExist) || fake.Calls(rules.OpEnsureCluster) != 0 {
		t.Errorf("host touched: conflist %v, %d rules ensures", err, fake.Calls(rules.OpEnsureCluster))
	}
	for _, act := range cs.Actions() {
		if act.GetResource().Resource == "nodes" {
			t.Errorf("Node touched: %v", act)
		}
	}
	if err := a.live.check(); err != nil {
		t.Errorf("liveness: %v", err)
	}
}
