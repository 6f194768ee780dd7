package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"text/tabwriter"
	"time"
)

// The targets.
const (
	convergeTargetMs  = 5000
	reconcileTargetMs = 50
	rssTargetBytes    = 60e6
	// apiBudget bounds the agent's requests while a run changes ~1,300
	// Nodes: a watch re-opened, a status patch, but nothing per Node.
	apiBudget = 10
)

// report is everything a run measured, printed as a table and written as
// JSON for tracking from run to run.
type report struct {
	Time      time.Time    `json:"time"`
	Machine   machine      `json:"machine"`
	Setup     setup        `json:"setup"`
	Create    convergence  `json:"create"`
	Reconcile *reconciles  `json:"reconcile,omitempty"` // nil when the create phase did not converge
	Churn     convergence  `json:"churn"`
	Memory    memoryReport `json:"memory"`
	API       apiReport    `json:"api"`
	Targets   []target     `json:"targets"`
	// RootChanges lists what changed in the machine's own netns during
	// the run; empty, as it must be.
	RootChanges string      `json:"root_netns_changes"`
	Compare     *comparison `json:"compare,omitempty"` // the agent beside flanneld
	Warnings    []string    `json:"warnings,omitempty"`
}

// machine is where the run ran.
type machine struct {
	CPUs      int    `json:"cpus"`
	Go        string `json:"go"`
	LoadStart string `json:"load_start"`
	LoadEnd   string `json:"load_end"`
}

// setup is what the run was asked to do.
type setup struct {
	Nodes       int    `json:"nodes"` // the agent's own plus the peers
	Churn       int    `json:"churn"`
	Workers     int    `json:"workers"`
	Resync      string `json:"resync"`
	ClusterCIDR string `json:"cluster_cidr"`
	Underlay    string `json:"underlay"`
	// OffLinkEvery: every n-th peer is off-link, reached through VXLAN
	// (the creates, reconciles and churn; not the comparison); 0: none.
	OffLinkEvery int `json:"offlink_every"`
}

// memoryReport is the agent's memory at the ends of the phases.
type memoryReport struct {
	Idle      memory `json:"idle"`      // ready, its own Node only
	Converged memory `json:"converged"` // after the creates
	End       memory `json:"end"`       // after churn and the reconciles
}

// apiReport is what the agent asked of the API server: before the peers
// existed (start-up), and while they were created, churned and resynced.
type apiReport struct {
	ServerBeforeAgent serverNodeRequests `json:"server_nodes_requests_before_agent"`
	AgentAtReady      float64            `json:"agent_requests_at_ready"`
	AgentDuringRun    float64            `json:"agent_requests_during_run"`
	AgentErrors       float64            `json:"agent_api_errors_during_run"`
	NodeChanges       int                `json:"node_changes_during_run"`
	ServerAtReady     serverNodeRequests `json:"server_nodes_requests_at_ready"`
	ServerDuringRun   serverNodeRequests `json:"server_nodes_requests_during_run"`
}

// target is one of the targets and whether the run met it.
type target struct {
	Name   string `json:"name"`
	Figure string `json:"figure"`
	Target string `json:"target"`
	Met    bool   `json:"met"`
}

// judge fills r.Targets from the figures.
func (r *report) judge() {
	conv := func(name string, c convergence) target {
		tun := ""
		if c.TunnelWanted > 0 {
			tun = fmt.Sprintf(", %d VXLAN peers' fdb and neighbour entries", c.TunnelWanted)
		}
		fig := fmt.Sprintf("%.0f ms (%d/%d routes%s)", c.AfterLastMs, c.RoutesSeen, c.RoutesWanted, tun)
		if !c.Converged {
			fig = fmt.Sprintf("not within %.0f ms (%d/%d routes%s)", c.AfterLastMs, c.RoutesSeen, c.RoutesWanted, tun)
		}
		return target{name, fig, fmt.Sprintf("<= %d ms", convergeTargetMs), c.Converged && c.AfterLastMs <= convergeTargetMs}
	}
	rec := target{Name: "full reconcile at all routes (median)", Figure: "not measured", Target: fmt.Sprintf("< %d ms", reconcileTargetMs)}
	if c := r.Reconcile; c != nil {
		rec.Figure = fmt.Sprintf("%.1f ms (max %.1f, mean %.1f, n=%d)", c.MedianMs, c.MaxMs, c.MeanMs, len(c.SamplesMs))
		rec.Met = c.MedianMs < reconcileTargetMs
	}
	peak := r.Memory.End.VmHWMKiB * 1024
	r.Targets = []target{
		conv(fmt.Sprintf("routes after the last of %d creates", r.Create.Changes), r.Create),
		rec,
		conv(fmt.Sprintf("routes after churn (%d deletes + %d creates)", r.Churn.Changes/2, r.Churn.Changes/2), r.Churn),
		{"agent peak RSS (VmHWM)", fmt.Sprintf("%.1f MB (now %.1f MB)", float64(peak)/1e6, float64(r.Memory.End.VmRSSKiB)*1024/1e6),
			fmt.Sprintf("< %.0f MB", rssTargetBytes/1e6), float64(peak) < rssTargetBytes},
		r.API.target(),
	}
}

// target judges the API figures: the agent holds exactly one watch on
// Nodes, and neither its own count nor the API server's count of Node
// requests other than the creates and deletes grows with the Nodes.
func (a apiReport) target() target {
	watches := a.ServerDuringRun.OpenWatches - a.ServerBeforeAgent.OpenWatches
	met := watches == 1 && a.AgentDuringRun <= apiBudget &&
		a.ServerDuringRun.Other <= apiBudget && a.ServerDuringRun.ListWatch <= apiBudget
	return target{
		Name: fmt.Sprintf("agent API requests over %d Node changes", a.NodeChanges),
		Figure: fmt.Sprintf("%.0f (server: list/watch %.0f, other %.0f; agent's open watches %.0f)",
			a.AgentDuringRun, a.ServerDuringRun.ListWatch, a.ServerDuringRun.Other, watches),
		Target: fmt.Sprintf("1 watch, <= %d other: none per Node", apiBudget),
		Met:    met,
	}
}

// print writes the report as a table.
func (r *report) print(out io.Writer) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	defer w.Flush()
	fmt.Fprintf(w, "\n== nodebridge-agent at scale, %s: %d CPUs, %s, load %s -> %s\n", r.Time.Format(time.RFC3339),
		r.Machine.CPUs, r.Machine.Go, r.Machine.LoadStart, r.Machine.LoadEnd)
	s := r.Setup
	fmt.Fprintf(w, "   %d Nodes (1 own + %d peers), churn %d, %d workers, --resync=%s, --cluster-cidr=%s, underlay %s\n",
		s.Nodes, s.Nodes-1, s.Churn, s.Workers, s.Resync, s.ClusterCIDR, s.Underlay)
	if s.OffLinkEvery > 0 {
		fmt.Fprintf(w, "   every %d. peer off-link (100.64.0.0/16, behind the gateway): %d through VXLAN, an fdb entry and a neighbour each, counted in convergence\n",
			s.OffLinkEvery, (s.Nodes-1)/s.OffLinkEvery)
	}
	fmt.Fprintf(w, "   creates took %.2f s, churn %.2f s; agent requests at ready %.0f\n",
		r.Create.ChangesSeconds, r.Churn.ChangesSeconds, r.API.AgentAtReady)
	fmt.Fprintln(w, "\nFIGURE\tVALUE\tTARGET\tMET")
	for _, t := range r.Targets {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.Name, t.Figure, t.Target, metWord(t.Met))
	}
	root := "untouched"
	if r.RootChanges != "" {
		root = "CHANGED:\n" + r.RootChanges
	}
	fmt.Fprintf(w, "\nroot netns: %s\n", root)
	for _, x := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", x)
	}
}

func metWord(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT MET"
}

// writeJSON writes r to path, making its dir.
func (r *report) writeJSON(path string) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // the targets hold "<" and are read by people
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("make dir of %s: %w", path, err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write report %s: %w", path, err)
	}
	return nil
}

// loadAvg is the first three fields of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	var a, b5, c string
	if _, err := fmt.Sscan(string(b), &a, &b5, &c); err != nil {
		return "unknown"
	}
	return a + " " + b5 + " " + c
}

func newMachine() machine {
	return machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), LoadStart: loadAvg()}
}
