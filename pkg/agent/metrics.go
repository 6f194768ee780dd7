package agent

import (
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the agent's figures. The zero value is ready; cmd makes it
// before the API client, whose transport feeds it (WrapTransport). The
// figures are kept under one lock and turned into samples when scraped
// (Metrics is a prometheus.Collector), so a scrape sees one consistent state.
type Metrics struct {
	mu                     sync.Mutex
	peers                  int
	routesWanted           int
	routesInstalled        int
	peersSkipped           int
	tunnelPeers            int            // peers reached through a VXLAN device, counted per family
	rejected               map[string]int // current podCIDR rejections by reason
	clusterCIDRKnown       bool
	eventsFailed           int
	rulesSkipped           int  // families whose iptables tools are missing
	conflistsShadowing     int  // other CNI configs sorting before ours
	conflistConfigRejected bool // the conflist ConfigMap's template is rejected
	ready                  bool
	reconciles             int
	reconcileErrors        map[string]int // failed reconciles by the step that failed
	reconcileSum           time.Duration
	reconcileLast          time.Duration
	lastSync               time.Time // end of the last successful reconcile
	apiErrors              int
	apiRequests            int
	routeChanges           int
	iptablesMode           string         // the iptables variant the agent runs, once set
	policies               int            // NetworkPolicies in the cache at the last compile
	policyIsolated         int            // pod addresses isolated, both directions
	policyRules            int            // compiled rules, both directions
	policyObjects          map[string]int // kernel objects of the policy table, by kind
	policyDrops            map[string]int // packets dropped by policy, by direction
	policySyncs            int            // policy tables written
	policyErrors           int            // policy writes that failed
	policyLast             time.Duration  // compile and write of the last one
}

var _ prometheus.Collector = (*Metrics)(nil)

// newRegistry is what /metrics serves: the agent's figures, the standard
// process and Go collectors, and nodebridge_build_info. It is private so
// nothing else registered in the binary (client-go's) leaks into it.
func newRegistry(m *Metrics, version string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "nodebridge_build_info",
		Help:        "Always 1; the labels name the agent's version and the Go release that built it.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	info.Set(1)
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(), info, m)
	return reg
}

// metric is one exposed figure: one value, or one sample per label value.
type metric struct {
	name, help string
	kind       prometheus.ValueType
	value      float64
	label      string   // the samples' label name
	samples    []sample // set: one sample per label value instead of value
}

// sample is one labelled value of a metric.
type sample struct {
	labelValue string
	value      float64
}

// Describe sends the descriptors of what Collect sends: the set is fixed.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(m, ch) }

// Collect sends a snapshot of the figures, then the reconcile duration summary.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, x := range m.list() {
		if x.samples == nil {
			ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(x.name, x.help, nil, nil), x.kind, x.value)
			continue
		}
		d := prometheus.NewDesc(x.name, x.help, []string{x.label}, nil)
		for _, s := range x.samples {
			ch <- prometheus.MustNewConstMetric(d, x.kind, s.value, s.labelValue)
		}
	}
	m.mu.Lock()
	sum, count := m.reconcileSum.Seconds(), m.reconciles
	m.mu.Unlock()
	d := prometheus.NewDesc("nodebridge_agent_reconcile_duration_seconds", "Duration of reconciles.", nil, nil)
	ch <- prometheus.MustNewConstSummary(d, uint64(count), sum, nil)
}

// list snapshots the figures in exposition order.
func (m *Metrics) list() []metric {
	m.mu.Lock()
	defer m.mu.Unlock()
	last := 0.0
	if !m.lastSync.IsZero() {
		last = float64(m.lastSync.UnixNano()) / 1e9
	}
	const gauge, counter = prometheus.GaugeValue, prometheus.CounterValue
	return []metric{
		{name: "nodebridge_agent_peers", kind: gauge, help: "Other Nodes with podCIDRs.", value: float64(m.peers)},
		{name: "nodebridge_agent_routes_wanted", kind: gauge, help: "Routes to other Nodes' podCIDRs the agent wants.", value: float64(m.routesWanted)},
		{name: "nodebridge_agent_routes_installed", kind: gauge, help: "Wanted routes present in the kernel after the last reconcile.", value: float64(m.routesInstalled)},
		{name: "nodebridge_agent_vxlan_peers", kind: gauge, help: "Peers reached through a VXLAN device, counted once per family.", value: float64(m.tunnelPeers)},
		{name: "nodebridge_agent_network_policies", kind: gauge, help: "NetworkPolicies known at the last compile (on every change and resync).", value: float64(m.policies)},
		{name: "nodebridge_agent_policy_isolated_pods", kind: gauge, help: "Addresses of this node's pods isolated by NetworkPolicy, ingress plus egress.", value: float64(m.policyIsolated)},
		{name: "nodebridge_agent_policy_rules", kind: gauge, help: "Rules compiled from the NetworkPolicies selecting this node's pods (a pod set, a peer set and ports each), ingress plus egress.", value: float64(m.policyRules)},
		{name: "nodebridge_agent_policy_kernel_objects", kind: gauge, help: "Objects of the policy table at the last write, by kind: chains, sets (maps included) and set elements.",
			label: "kind", samples: samplesOf([]string{"chains", "sets", "elements"}, m.policyObjects)},
		{name: "nodebridge_agent_policy_drops_total", kind: counter, help: "Packets the policy table dropped, by direction (read at each write and resync).",
			label: "direction", samples: samplesOf([]string{"ingress", "egress"}, m.policyDrops)},
		{name: "nodebridge_agent_policy_writes_total", kind: counter, help: "Policy tables written, one transaction each.", value: float64(m.policySyncs)},
		{name: "nodebridge_agent_policy_write_errors_total", kind: counter, help: "Policy writes that failed.", value: float64(m.policyErrors)},
		{name: "nodebridge_agent_policy_sync_last_duration_seconds", kind: gauge, help: "Compile and write of the last policy table.", value: m.policyLast.Seconds()},
		{name: "nodebridge_agent_peers_skipped", kind: gauge, help: "Peer podCIDRs not routed, for any reason.", value: float64(m.peersSkipped)},
		{name: "nodebridge_agent_podcidr_rejected", kind: gauge, help: "PodCIDRs not used, by reason: peers' not routed, the own Node's refused.",
			label: "reason", samples: samplesOf(rejectReasons(), m.rejected)},
		{name: "nodebridge_agent_cluster_cidr_known", kind: gauge, help: "1 once the cluster CIDRs are known (flags or kubeadm-config); until then nothing is routed.",
			value: boolValue(m.clusterCIDRKnown)},
		{name: "nodebridge_agent_rules_skipped", kind: gauge, help: "Address families whose iptables tools are missing with --ipmasq-backend=iptables, so their FORWARD accepts are not installed.", value: float64(m.rulesSkipped)},
		{name: "nodebridge_agent_iptables_mode", kind: gauge, help: "Always 1; the label names the iptables variant (legacy or nft) whose commands the agent runs.",
			label: "mode", samples: modeSample(m.iptablesMode)},
		{name: "nodebridge_agent_conflists_shadowing", kind: gauge, help: "Other CNI config files in the conf dir sorting before the agent's conflist: runtimes use the first, so pods do not get nodebridge while this is above 0.",
			value: float64(m.conflistsShadowing)},
		{name: "nodebridge_agent_conflist_config_rejected", kind: gauge, help: "1 while the --conflist-configmap template is rejected (not JSON, no nodebridge plugin, a field of the wrong type); the last good conflist stays.",
			value: boolValue(m.conflistConfigRejected)},
		{name: "nodebridge_agent_ready", kind: gauge, help: "1 once the conflist, rules and routes are in place.", value: boolValue(m.ready)},
		{name: "nodebridge_agent_reconcile_last_duration_seconds", kind: gauge, help: "Duration of the last reconcile.", value: m.reconcileLast.Seconds()},
		{name: "nodebridge_agent_last_sync_timestamp_seconds", kind: gauge, help: "Unix time of the last successful reconcile.", value: last},
		{name: "nodebridge_agent_reconcile_errors_total", kind: counter, help: "Reconciles that failed, by the step that failed; one failing in two steps counts in both.",
			label: "step", samples: samplesOf(reconcileSteps(), m.reconcileErrors)},
		{name: "nodebridge_agent_api_errors_total", kind: counter, help: "Failed Kubernetes API calls, list and watch included, and Events dropped.", value: float64(m.apiErrors)},
		{name: "nodebridge_agent_events_failed_total", kind: counter, help: "Warning Events (PodCIDRRejected, RouteConflict, ConflistShadowed, ConflistConfigRejected) not recorded: dropped or failed.", value: float64(m.eventsFailed)},
		{name: "nodebridge_agent_api_requests_total", kind: counter, help: "Requests sent to the Kubernetes API server.", value: float64(m.apiRequests)},
		{name: "nodebridge_agent_route_changes_total", kind: counter, help: "Routes added, replaced or deleted.", value: float64(m.routeChanges)},
	}
}

// samplesOf is one sample per label value, zero ones included, so a value
// that clears shows 0 rather than vanishing. Lock held.
func samplesOf(values []string, counts map[string]int) []sample {
	var out []sample
	for _, v := range values {
		out = append(out, sample{labelValue: v, value: float64(counts[v])})
	}
	return out
}

// modeSample is the iptables mode's one sample, none before it is set.
func modeSample(mode string) []sample {
	if mode == "" {
		return []sample{} // not nil: nil would send an unlabelled value
	}
	return []sample{{labelValue: mode, value: 1}}
}

// SetIPTablesMode records the iptables variant the agent runs, which cmd
// chooses at start (rules.DetectIPTablesMode).
func (m *Metrics) SetIPTablesMode(mode string) {
	m.update(func(m *Metrics) { m.iptablesMode = mode })
}

// update runs f with the lock held.
func (m *Metrics) update(f func(m *Metrics)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(m)
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
