package agent

import (
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
)

// metrics are the agent's figures, written in the Prometheus text format by
// hand: a dozen numbers do not justify a client library.
type metrics struct {
	mu              sync.Mutex
	peers           int
	routesWanted    int
	routesInstalled int
	peersSkipped    int
	rulesSkipped    int // families whose iptables tools are missing
	ready           bool
	reconciles      int
	reconcileErrors int
	reconcileSum    time.Duration
	reconcileLast   time.Duration
	lastSync        time.Time // end of the last successful reconcile
	apiErrors       int
	apiRequests     int
	routeChanges    int
}

// metric is one exposed figure.
type metric struct {
	name, kind, help string
	value            float64
}

// list snapshots the figures in exposition order.
func (m *metrics) list() []metric {
	m.mu.Lock()
	defer m.mu.Unlock()
	last := 0.0
	if !m.lastSync.IsZero() {
		last = float64(m.lastSync.UnixNano()) / 1e9
	}
	return []metric{
		{"nodebridge_agent_peers", "gauge", "Other Nodes with podCIDRs.", float64(m.peers)},
		{"nodebridge_agent_routes_wanted", "gauge", "Routes to other Nodes' podCIDRs the agent wants.", float64(m.routesWanted)},
		{"nodebridge_agent_routes_installed", "gauge", "Wanted routes present in the kernel after the last reconcile.", float64(m.routesInstalled)},
		{"nodebridge_agent_peers_skipped", "gauge", "Peer podCIDRs not routed: no InternalIP of the family, or not on-link.", float64(m.peersSkipped)},
		{"nodebridge_agent_rules_skipped", "gauge", "Address families whose iptables tools are missing, so their FORWARD accepts are not installed.", float64(m.rulesSkipped)},
		{"nodebridge_agent_ready", "gauge", "1 once the conflist, rules and routes are in place.", boolValue(m.ready)},
		{"nodebridge_agent_reconcile_last_duration_seconds", "gauge", "Duration of the last reconcile.", m.reconcileLast.Seconds()},
		{"nodebridge_agent_last_sync_timestamp_seconds", "gauge", "Unix time of the last successful reconcile.", last},
		{"nodebridge_agent_reconcile_errors_total", "counter", "Reconciles that failed.", float64(m.reconcileErrors)},
		{"nodebridge_agent_api_errors_total", "counter", "Failed Kubernetes API calls, list and watch included.", float64(m.apiErrors)},
		{"nodebridge_agent_api_requests_total", "counter", "Requests sent to the Kubernetes API server.", float64(m.apiRequests)},
		{"nodebridge_agent_route_changes_total", "counter", "Routes added, replaced or deleted.", float64(m.routeChanges)},
	}
}

// write prints the exposition: the list, then the reconcile duration summary.
func (m *metrics) write(w io.Writer) error {
	var err error
	p := func(format string, a ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, a...)
		}
	}
	for _, x := range m.list() {
		p("# HELP %s %s\n# TYPE %s %s\n%s %s\n", x.name, x.help, x.name, x.kind, x.name, formatFloat(x.value))
	}
	m.mu.Lock()
	sum, count := m.reconcileSum.Seconds(), m.reconciles
	m.mu.Unlock()
	const name = "nodebridge_agent_reconcile_duration_seconds"
	p("# HELP %s Duration of reconciles.\n# TYPE %s summary\n", name, name)
	p("%s_sum %s\n%s_count %d\n", name, formatFloat(sum), name, count)
	return err
}

// update runs f with the lock held.
func (m *metrics) update(f func(m *metrics)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(m)
}

// formatFloat prints a value as Prometheus parsers expect.
func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
