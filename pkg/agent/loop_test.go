package agent

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nodebridge/nodebridge/internal/testenv"
	corev1 "k8s.io/api/core/v1"
)

// staticNodes stands in for the informer cache: plain structs, no API.
type staticNodes struct {
	mu    sync.Mutex
	nodes []*corev1.Node
}

func (s *staticNodes) list() ([]*corev1.Node, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.nodes), nil
}

func (s *staticNodes) set(nodes ...*corev1.Node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nodes = nodes
}

// syncBuffer is a log sink the agent's goroutines share.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startAgent runs the reconcile loop and the netlink watchers of an agent
// for node "a" in th, until the test ends.
func startAgent(t *testing.T, th *testHost, src *staticNodes) *agent {
	t.Helper()
	a, _ := startAgentLogs(t, th, src)
	return a
}

// startAgentLogs is startAgent, also returning the agent's log.
func startAgentLogs(t *testing.T, th *testHost, src *staticNodes) (*agent, *syncBuffer) {
	t.Helper()
	return startAgentWith(t, th, src, func(*Config) {})
}

// startAgentWith is startAgentLogs with the config changed by set.
func startAgentWith(t *testing.T, th *testHost, src *staticNodes, set func(*Config)) (*agent, *syncBuffer) {
	t.Helper()
	cfg := Defaults()
	cfg.NodeName, cfg.CNIConfDir, cfg.Resync = "a", t.TempDir(), time.Hour // only events trigger
	cfg.ClusterCIDRs = pfx(t, "10.244.0.0/16", "fd00:10:244::/56")
	set(&cfg)
	var logs syncBuffer
	a := newAgent(cfg, slog.New(slog.NewTextHandler(&logs, nil)), th.h, th.rt)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agent log:\n%s", logs.String())
		}
	})
	a.ns, a.rules.backend, a.nodes = &th.ns, rulesIn(t, th.ns, ""), src.list
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); a.keepSubscribed(ctx, "route", a.routeEvents) }()
	go func() { defer wg.Done(); a.keepSubscribed(ctx, "link", a.linkEvents) }()
	go func() { defer wg.Done(); a.keepSubscribed(ctx, "neighbour", a.neighEvents) }()
	go func() { defer wg.Done(); a.loop(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return a, &logs
}

// waitRoutes polls the proto-78 routes until they equal want and returns how long it took.
func waitRoutes(t *testing.T, th *testHost, within time.Duration, want ...string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got := th.routes(t, "proto", "78")
		if slices.Equal(got, want) {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("proto 78 routes after %s:\n got %q\nwant %q", within, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitReady polls the agent's readiness until it is ready: the routes go
// in first in a reconcile, the rules and conflist after them, then
// readiness.
func waitReady(t *testing.T, a *agent, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for ok, reason := a.ready.get(); !ok; ok, reason = a.ready.get() {
		if time.Now().After(deadline) {
			t.Fatalf("not ready after %s: %s", within, reason)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLoopKernel(t *testing.T) {
	th := newHost(t)
	own := node("a", []string{"10.244.0.0/24", "fd00:10:244::/64"}, "198.18.0.11", "fd00:198:18::11")
	src := &staticNodes{}
	src.set(own, node("b", []string{"10.244.1.0/24", "fd00:10:244:1::/64"}, "198.18.0.12", "fd00:198:18::12"))
	a := startAgent(t, th, src)
	both := []string{"10.244.1.0/24 via 198.18.0.12 dev ul0", "fd00:10:244:1::/64 via fd00:198:18::12 dev ul0"}
	waitRoutes(t, th, 5*time.Second, both...)
	waitReady(t, a, 5*time.Second)
	// auto: the smaller underlay MTU (1400) less the IPv6 VXLAN overhead.
	conf, err := os.ReadFile(a.cfg.confPath())
	if err != nil || !strings.Contains(string(conf), `"mtu": 1330`) || !strings.Contains(string(conf), `"10.244.0.0/16"`) {
		t.Errorf("conflist: %v\n%s", err, conf)
	}
	if jumps, rules := agentChain(testenv.Run(t, th.name, "iptables-save", "-t", "filter")); jumps != 1 || len(rules) != 3 {
		t.Errorf("IPv4 rules: %d jumps, rules %q", jumps, rules)
	}

	testenv.Run(t, th.name, "ip", "route", "del", "10.244.1.0/24", "proto", "78")
	if took := waitRoutes(t, th, 2*time.Second, both...); took > time.Second {
		t.Errorf("route deleted by hand restored after %s, want within 1s", took)
	}

	// Keep the IPv6 address over the flap, as a managed host re-adds it.
	testenv.Run(t, th.name, "sysctl", "-qw", "net.ipv6.conf.ul0.keep_addr_on_down=1")
	testenv.Run(t, th.name, "ip", "link", "set", "ul0", "down")
	testenv.Run(t, th.name, "ip", "link", "set", "ul0", "up")
	if took := waitRoutes(t, th, 3*time.Second, both...); took > 2*time.Second {
		t.Errorf("routes back %s after a link flap, want within 2s", took)
	}

	// The IPv6 address gone: IPv4 keeps its route, IPv6 routes go, and
	// /readyz names the address until it is back.
	testenv.Run(t, th.name, "ip", "-6", "addr", "del", "fd00:198:18::11/64", "dev", "ul0")
	a.poke()
	waitRoutes(t, th, 2*time.Second, both[0])
	waitReason(t, a, "fd00:198:18::11") // set at the end of the reconcile that deleted the route
	testenv.Run(t, th.name, "ip", "-6", "addr", "add", "fd00:198:18::11/64", "dev", "ul0", "nodad")
	waitRoutes(t, th, 3*time.Second, both...) // the retry after the failure finds it

	src.set(own, node("c", []string{"10.244.2.0/24"}, "198.18.0.13"))
	a.poke() // what the informer's event handler does
	waitRoutes(t, th, 2*time.Second, "10.244.2.0/24 via 198.18.0.13 dev ul0")

	src.set(node("a", nil, "198.18.0.11"))
	a.poke()
	deadline := time.Now().Add(2 * time.Second)
	for ok, reason := a.ready.get(); ok || reason != errNoPodCIDR.Error(); ok, reason = a.ready.get() {
		if time.Now().After(deadline) {
			t.Fatalf("own podCIDR gone: ready %v reason %q, want not ready %q", ok, reason, errNoPodCIDR)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPacer: a poke reconciles at once while the credit lasts, so a lone
// change after a quiet spell never waits; in a burst the reconciles are
// paced to a fifth of the time, one timer serving every poke until the
// debt is paid; the credit builds up again with time, to its cap.
func TestPacer(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var p pacer
	if !p.poke(t0) {
		t.Fatal("first poke waits; want a reconcile at once")
	}
	// A burst: reconciles of 4 ms back to back spend the 20 ms credit,
	// earning 0.8 ms each meanwhile: 7 go at once, then the pacing starts.
	now, immediate := t0, 0
	for p.poke(now) && immediate < 100 {
		immediate++
		now = now.Add(4 * time.Millisecond)
		p.ran(now, 4*time.Millisecond)
	}
	if immediate != 7 {
		t.Fatalf("%d reconciles of a burst went at once; want 7", immediate)
	}
	armed := p.timer
	if armed == nil || p.poke(now.Add(time.Millisecond)) || p.timer != armed {
		t.Fatal("a second poke in debt did not share the first one's timer")
	}
	p.timer = nil // fired
	// A lone change after a quiet spell goes at once, and the credit is
	// capped: an hour of quiet buys no more than maxCredit.
	now = now.Add(time.Hour)
	if !p.poke(now) || p.credit != maxCredit {
		t.Errorf("after an hour's quiet: credit %v; want a reconcile at once and %v", p.credit, maxCredit)
	}
	// Back-to-back reconciles owe no more than the last one's time.
	p.ran(now, 30*time.Millisecond)
	p.ran(now, 10*time.Millisecond)
	if p.credit != -10*time.Millisecond {
		t.Errorf("after 30 then 10 ms back to back: credit %v, want -10ms", p.credit)
	}
	// A reconcile far longer than the credit waits at most maxWait.
	p.ran(now, 10*time.Second)
	if p.poke(now) {
		t.Fatal("poke after a 10 s reconcile reconciled at once")
	}
	select {
	case <-p.timer:
		t.Fatal("timer fired at once")
	default:
	}
}

// Routes another tool left to the peers' podCIDRs (flannel host-gw's
// proto boot routes): one going to the peer's InternalIP is taken over as
// proto 78; one going elsewhere is left, the peer skipped and counted,
// logged once, while the other peers are routed and the node is ready.
// Once that route is gone, the peer is routed.
func TestForeignRoutesKernel(t *testing.T) {
	th := newHost(t)
	testenv.Run(t, th.name, "ip", "route", "add", "10.244.1.0/24", "via", "198.18.0.12", "dev", "ul0", "proto", "boot")
	testenv.Run(t, th.name, "ip", "route", "add", "10.244.2.0/24", "via", "198.18.0.99", "dev", "ul0", "proto", "static")
	src := &staticNodes{}
	src.set(node("a", []string{"10.244.0.0/24"}, "198.18.0.11"),
		node("b", []string{"10.244.1.0/24"}, "198.18.0.12"),
		node("c", []string{"10.244.2.0/24"}, "198.18.0.13"),
		node("d", []string{"10.244.3.0/24"}, "198.18.0.14"))
	a, logs := startAgentLogs(t, th, src)
	waitRoutes(t, th, 5*time.Second, "10.244.1.0/24 via 198.18.0.12 dev ul0", "10.244.3.0/24 via 198.18.0.14 dev ul0")
	waitReady(t, a, 5*time.Second) // with a peer blocked by a foreign route
	if got := th.routes(t, "proto", "boot"); len(got) != 0 {
		t.Errorf("the taken-over route is still there as proto boot: %q", got)
	}
	if got := th.routes(t, "proto", "static"); !slices.Equal(got, []string{"10.244.2.0/24 via 198.18.0.99 dev ul0"}) {
		t.Errorf("the route going elsewhere was touched: %q", got)
	}
	m := metricsOf(t, a.metrics)
	if got := m[`nodebridge_agent_podcidr_rejected{reason="foreign-route"}`]; got != 1 || m["nodebridge_agent_ready"] != 1 {
		t.Errorf("metrics: foreign-route %v ready %v, want 1, 1", got, m["nodebridge_agent_ready"])
	}
	for range 3 { // reconciles that find the same conflict
		a.poke()
		time.Sleep(250 * time.Millisecond) // past the pacing window
	}
	if n := strings.Count(logs.String(), `reason=foreign-route rule="a route of another protocol (proto static) via 198.18.0.99 dev ul0`); n != 1 {
		t.Errorf("%d log lines for a lasting foreign route, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "was_proto=boot") {
		t.Errorf("no log line for the route taken over:\n%s", logs.String())
	}

	testenv.Run(t, th.name, "ip", "route", "del", "10.244.2.0/24", "proto", "static")
	a.poke()
	waitRoutes(t, th, 2*time.Second, "10.244.1.0/24 via 198.18.0.12 dev ul0", "10.244.2.0/24 via 198.18.0.13 dev ul0",
		"10.244.3.0/24 via 198.18.0.14 dev ul0")
}
