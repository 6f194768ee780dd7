package agent

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Metrics are the agent's figures, written in the Prometheus text format by
// hand: a dozen numbers do not justify a client library. The zero value is
// ready; cmd makes it before the API client, whose transport feeds it
// (WrapTransport).
type Metrics struct {
	mu                 sync.Mutex
	peers              int
	routesWanted       int
	routesInstalled    int
	peersSkipped       int
	rejected           map[string]int // current podCIDR rejections by reason
	clusterCIDRKnown   bool
	eventsFailed       int
	rulesSkipped       int // families whose iptables tools are missing
	conflistsShadowing int // other CNI configs sorting before ours
	ready              bool
	reconciles         int
	reconcileErrors    int
	reconcileSum       time.Duration
	reconcileLast      time.Duration
	lastSync           time.Time // end of the last successful reconcile
	apiErrors          int
	apiRequests        int
	routeChanges       int
}

// metric is one exposed figure: one value, or one sample per label value.
type metric struct {
	name, kind, help string
	value            float64
	label            string   // the samples' label name
	samples          []sample // set: one line per sample instead of value
}

// sample is one labelled value of a metric.
type sample struct {
	labelValue string
	value      float64
}

// list snapshots the figures in exposition order.
func (m *Metrics) list() []metric {
	m.mu.Lock()
	defer m.mu.Unlock()
	last := 0.0
	if !m.lastSync.IsZero() {
		last = float64(m.lastSync.UnixNano()) / 1e9
	}
	return []metric{
		{name: "nodebridge_agent_peers", kind: "gauge", help: "Other Nodes with podCIDRs.", value: float64(m.peers)},
		{name: "nodebridge_agent_routes_wanted", kind: "gauge", help: "Routes to other Nodes' podCIDRs the agent wants.", value: float64(m.routesWanted)},
		{name: "nodebridge_agent_routes_installed", kind: "gauge", help: "Wanted routes present in the kernel after the last reconcile.", value: float64(m.routesInstalled)},
		{name: "nodebridge_agent_peers_skipped", kind: "gauge", help: "Peer podCIDRs not routed, for any reason.", value: float64(m.peersSkipped)},
		{name: "nodebridge_agent_podcidr_rejected", kind: "gauge", help: "PodCIDRs not used, by reason: peers' not routed, the own Node's refused.",
			label: "reason", samples: m.rejectedSamples()},
		{name: "nodebridge_agent_cluster_cidr_known", kind: "gauge", help: "1 once the cluster CIDRs are known (flags or kubeadm-config); until then nothing is routed.",
			value: boolValue(m.clusterCIDRKnown)},
		{name: "nodebridge_agent_rules_skipped", kind: "gauge", help: "Address families whose iptables tools are missing with --ipmasq-backend=iptables, so their FORWARD accepts are not installed.", value: float64(m.rulesSkipped)},
		{name: "nodebridge_agent_conflists_shadowing", kind: "gauge", help: "Other CNI config files in the conf dir sorting before the agent's conflist: runtimes use the first, so pods do not get nodebridge while this is above 0.",
			value: float64(m.conflistsShadowing)},
		{name: "nodebridge_agent_ready", kind: "gauge", help: "1 once the conflist, rules and routes are in place.", value: boolValue(m.ready)},
		{name: "nodebridge_agent_reconcile_last_duration_seconds", kind: "gauge", help: "Duration of the last reconcile.", value: m.reconcileLast.Seconds()},
		{name: "nodebridge_agent_last_sync_timestamp_seconds", kind: "gauge", help: "Unix time of the last successful reconcile.", value: last},
		{name: "nodebridge_agent_reconcile_errors_total", kind: "counter", help: "Reconciles that failed.", value: float64(m.reconcileErrors)},
		{name: "nodebridge_agent_api_errors_total", kind: "counter", help: "Failed Kubernetes API calls, list and watch included, and Events dropped.", value: float64(m.apiErrors)},
		{name: "nodebridge_agent_events_failed_total", kind: "counter", help: "Warning Events (PodCIDRRejected, RouteConflict, ConflistShadowed) not recorded: dropped or failed.", value: float64(m.eventsFailed)},
		{name: "nodebridge_agent_api_requests_total", kind: "counter", help: "Requests sent to the Kubernetes API server.", value: float64(m.apiRequests)},
		{name: "nodebridge_agent_route_changes_total", kind: "counter", help: "Routes added, replaced or deleted.", value: float64(m.routeChanges)},
	}
}

// write prints the exposition: the list, then the reconcile duration summary.
func (m *Metrics) write(w io.Writer) error {
	var err error
	p := func(format string, a ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, a...)
		}
	}
	for _, x := range m.list() {
		p("# HELP %s %s\n# TYPE %s %s\n", x.name, x.help, x.name, x.kind)
		if x.samples == nil {
			p("%s %s\n", x.name, formatFloat(x.value))
		}
		for _, s := range x.samples {
			p("%s{%s=\"%s\"} %s\n", x.name, x.label, escapeLabel(s.labelValue), formatFloat(s.value))
		}
	}
	m.mu.Lock()
	sum, count := m.reconcileSum.Seconds(), m.reconciles
	m.mu.Unlock()
	const name = "nodebridge_agent_reconcile_duration_seconds"
	p("# HELP %s Duration of reconciles.\n# TYPE %s summary\n", name, name)
	p("%s_sum %s\n%s_count %d\n", name, formatFloat(sum), name, count)
	return err
}

// rejectedSamples is one sample per rejection reason, zero ones included,
// so a reason that clears shows 0 rather than vanishing. Lock held.
func (m *Metrics) rejectedSamples() []sample {
	var out []sample
	for _, r := range rejectReasons() {
		out = append(out, sample{labelValue: r, value: float64(m.rejected[r])})
	}
	return out
}

// escapeLabel escapes a label value as the text format wants.
func escapeLabel(v string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
}

// update runs f with the lock held.
func (m *Metrics) update(f func(m *Metrics)) {
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
