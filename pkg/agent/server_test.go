package agent

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// parseExposition checks the Prometheus text format line by line and
// returns the samples by name, labels included as printed
// (`name{reason="x"}`): every sample's metric has a TYPE line before it,
// and a label set is one label="value" pair with a quoted value.
func parseExposition(t *testing.T, text string) map[string]float64 {
	t.Helper()
	samples := map[string]float64{}
	typed := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if f := strings.Fields(l); len(f) >= 4 && f[0] == "#" && f[1] == "TYPE" {
			typed[f[2]] = true
			continue
		}
		if strings.HasPrefix(l, "# HELP ") {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		if i < 0 {
			t.Fatalf("bad exposition line %q", l)
		}
		key, value := l[:i], l[i+1:]
		v, err := strconv.ParseFloat(value, 64)
		name, ok := sampleName(key)
		base := strings.TrimSuffix(strings.TrimSuffix(name, "_sum"), "_count")
		if !ok || err != nil || !typed[base] {
			t.Fatalf("bad exposition line %q", l)
		}
		if _, dup := samples[key]; dup {
			t.Fatalf("sample %s twice", key)
		}
		samples[key] = v
	}
	return samples
}

// sampleName returns the metric name of a sample key, checking its label
// set: name, or name{label="value",...} with quoted, escaped values.
func sampleName(key string) (string, bool) {
	name, labels, hasLabels := strings.Cut(key, "{")
	if name == "" || strings.ContainsAny(name, " }\"=,") {
		return "", false
	}
	if !hasLabels {
		return name, true
	}
	rest, ok := strings.CutSuffix(labels, "}")
	for ok && rest != "" {
		var label string
		label, rest, ok = strings.Cut(rest, "=")
		value, err := strconv.QuotedPrefix(rest)
		if label == "" || err != nil || value[0] != '"' {
			return "", false
		}
		rest = strings.TrimPrefix(rest[len(value):], ",")
	}
	return name, ok
}

// scrape serves reg as /metrics does and returns the body.
func scrape(t *testing.T, reg prometheus.Gatherer) string {
	t.Helper()
	srv := httptest.NewServer(newMux(&readiness{}, newLiveness(time.Minute, time.Now), reg, discard()))
	defer srv.Close()
	code, body := get(t, srv.URL+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d %q", code, body)
	}
	return body
}

func TestMetricsText(t *testing.T) {
	m := &Metrics{}
	m.update(func(m *Metrics) {
		m.peers, m.routesWanted, m.routesInstalled, m.peersSkipped = 3, 5, 4, 1
		m.reconciles, m.reconcileSum, m.reconcileLast = 2, 3*time.Millisecond, time.Millisecond
		m.apiErrors, m.routeChanges, m.ready = 7, 9, true
		m.lastSync = time.Unix(1700000000, 500_000_000)
	})
	m.update(func(m *Metrics) { m.reconcileErrors = map[string]int{stepRoutes: 2, stepRules: 1} })
	got := metricsOf(t, m)
	for name, want := range map[string]float64{
		"nodebridge_agent_peers": 3, "nodebridge_agent_routes_wanted": 5, "nodebridge_agent_routes_installed": 4,
		"nodebridge_agent_peers_skipped": 1, "nodebridge_agent_api_errors_total": 7, "nodebridge_agent_route_changes_total": 9,
		"nodebridge_agent_last_sync_timestamp_seconds": 1700000000.5, "nodebridge_agent_ready": 1,
		"nodebridge_agent_reconcile_duration_seconds_sum": 0.003, "nodebridge_agent_reconcile_duration_seconds_count": 2,
		"nodebridge_agent_reconcile_last_duration_seconds":       0.001,
		`nodebridge_agent_reconcile_errors_total{step="routes"}`: 2, `nodebridge_agent_reconcile_errors_total{step="rules"}`: 1,
		`nodebridge_agent_reconcile_errors_total{step="conflist"}`: 0,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s: got %v (present %v), want %v", name, v, ok, want)
		}
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServer(t *testing.T) {
	rd, m := &readiness{reason: "waiting for podCIDR"}, &Metrics{}
	srv := httptest.NewServer(newMux(rd, newLiveness(time.Minute, time.Now), newRegistry(m, "v1.2.3"), discard()))
	defer srv.Close()
	if code, body := get(t, srv.URL+"/readyz"); code != 503 || !strings.Contains(body, "waiting for podCIDR") {
		t.Errorf("/readyz before ready: %d %q", code, body)
	}
	if code, _ := get(t, srv.URL+"/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	rd.set(true, "")
	if code, _ := get(t, srv.URL+"/readyz"); code != 200 {
		t.Errorf("/readyz when ready: %d", code)
	}
	code, body := get(t, srv.URL+"/metrics")
	got := parseExposition(t, body)
	if v, ok := got["nodebridge_agent_peers"]; code != 200 || !ok || v != 0 {
		t.Errorf("/metrics: %d %q", code, body)
	}
	info := fmt.Sprintf(`nodebridge_build_info{goversion=%q,version="v1.2.3"}`, runtime.Version())
	for _, name := range []string{info, "go_goroutines", "process_cpu_seconds_total", "process_resident_memory_bytes"} {
		if _, ok := got[name]; !ok {
			t.Errorf("/metrics has no %s", name)
		}
	}
	if got[info] != 1 {
		t.Errorf("%s = %v, want 1", info, got[info])
	}
}

// serve stops when its context ends, and reports a taken address at once.
func TestServeShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	wait, err := serve(ctx, "127.0.0.1:0", http.NotFoundHandler(), discard())
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	done := make(chan error, 1)
	go func() { done <- wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server did not shut down")
	}
	ln := httptest.NewServer(http.NotFoundHandler())
	defer ln.Close()
	if _, err := serve(context.Background(), strings.TrimPrefix(ln.URL, "http://"), http.NotFoundHandler(), discard()); err == nil {
		t.Error("serve on a taken address: no error")
	}
}

// HoldUninstalled answers ok on /healthz and /readyz, so a DaemonSet's
// probes count the node done, until its context ends.
func TestHoldUninstalled(t *testing.T) {
	ln := httptest.NewServer(http.NotFoundHandler())
	addr := strings.TrimPrefix(ln.URL, "http://")
	ln.Close() // a free port, most likely still free below
	cfg := Defaults()
	cfg.MetricsAddr = addr
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- HoldUninstalled(ctx, cfg, discard()) }()
	for _, path := range []string{"/healthz", "/readyz"} {
		var body string
		var code int
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			resp, err := http.Get("http://" + addr + path)
			if err != nil {
				continue
			}
			b, _ := io.ReadAll(resp.Body) // compared below
			resp.Body.Close()
			code, body = resp.StatusCode, string(b)
			break
		}
		if code != http.StatusOK || body != "ok: uninstalled\n" {
			t.Errorf("GET %s: %d %q, want 200 \"ok: uninstalled\"", path, code, body)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("HoldUninstalled: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("HoldUninstalled did not return after its context ended")
	}
}
