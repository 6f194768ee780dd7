package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"text/tabwriter"
	"time"
)

// targetMs is the issue's: a change enforced within 1 s.
const targetMs = 1000

// report is everything a run measured.
type report struct {
	Time            time.Time      `json:"time"`
	CPUs            int            `json:"cpus"`
	Pods            int            `json:"pods"`
	Namespaces      int            `json:"namespaces"`
	Policies        int            `json:"policies"`
	CreateSeconds   float64        `json:"create_seconds"`   // all objects created
	ConvergeSeconds float64        `json:"converge_seconds"` // from the first create to the agent's last write
	Agent           agentFigures   `json:"agent"`
	Kernel          kernelObjects  `json:"kernel"`
	Memory          memory         `json:"memory"`
	Changes         []latencies    `json:"changes"`
	APIRequests     int            `json:"agent_api_requests_during_changes"` // it watches: none per change
	Connect         connectFigures `json:"connect"`
	SmallKernel     kernelObjects  `json:"small_kernel"` // the table with the probes' policies alone
	Met             bool           `json:"targets_met"`
	RootChanges     string         `json:"root_netns_changes"`
}

// agentFigures is the agent's account, from its metrics.
type agentFigures struct {
	WriteMs  float64 `json:"last_compile_and_write_ms"`
	Isolated int     `json:"isolated_pod_addresses"`
	Rules    int     `json:"rules"`
	Elements int     `json:"elements"`
}

// kernelObjects is what the node's kernel holds in the policy table.
type kernelObjects struct {
	Chains     int `json:"chains"`
	Rules      int `json:"rules"`
	Sets       int `json:"sets"` // maps included
	Elements   int `json:"elements"`
	LargestSet int `json:"largest_set"`
}

type memory struct {
	RSSMB  float64 `json:"rss_mb"`
	PeakMB float64 `json:"peak_rss_mb"`
}

// connectFigures time new connections through the server's class chain,
// with the full table and with the small one.
type connectFigures struct {
	N          int     `json:"n"`
	FullP50us  float64 `json:"full_p50_us"`
	SmallP50us float64 `json:"small_p50_us"`
	Ratio      float64 `json:"full_over_small"`
}

// latencies are one kind of change's times to enforcement, in ms.
type latencies struct {
	Name   string    `json:"name"`
	Open   []float64 `json:"open_ms"`
	Closed []float64 `json:"closed_ms"`
}

func (r *report) add(name string, open, closed time.Duration) {
	i := slices.IndexFunc(r.Changes, func(l latencies) bool { return l.Name == name })
	if i < 0 {
		r.Changes = append(r.Changes, latencies{Name: name})
		i = len(r.Changes) - 1
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	r.Changes[i].Open = append(r.Changes[i].Open, ms(open))
	r.Changes[i].Closed = append(r.Changes[i].Closed, ms(closed))
}

// judge sets Met: every change, either way, enforced within the target.
func (r *report) judge() {
	r.CPUs = runtime.NumCPU()
	r.Met = len(r.Changes) > 0 && r.RootChanges == ""
	for _, l := range r.Changes {
		if slices.Max(l.Open) > targetMs || slices.Max(l.Closed) > targetMs {
			r.Met = false
		}
	}
}

// changeCount is the changes made, each way counted.
func (r *report) changeCount() int {
	n := 0
	for _, l := range r.Changes {
		n += len(l.Open) + len(l.Closed)
	}
	return n
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	return s[len(s)/2]
}

func (r *report) print(out io.Writer) {
	fmt.Fprintf(out, "NetworkPolicy at scale: %d pods on the node (2 real, attached by the plugin), %d namespaces, %d policies; %d CPUs\n",
		r.Pods, r.Namespaces, r.Policies, r.CPUs)
	fmt.Fprintf(out, "objects created in %.1f s; the agent's last write %.1f s after the first create\n\n", r.CreateSeconds, r.ConvergeSeconds)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "change, enforced after (new connections)\topened p50\tmax\tclosed p50\tmax\ttarget\tmet")
	for _, l := range r.Changes {
		met := slices.Max(l.Open) <= targetMs && slices.Max(l.Closed) <= targetMs
		fmt.Fprintf(tw, "%s (%d rounds)\t%.0f ms\t%.0f ms\t%.0f ms\t%.0f ms\t<= %d ms\t%v\n", l.Name, len(l.Open),
			median(l.Open), slices.Max(l.Open), median(l.Closed), slices.Max(l.Closed), targetMs, yesNo(met))
	}
	tw.Flush()
	k, a := r.Kernel, r.Agent
	fmt.Fprintf(out, "\nkernel, table inet nodebridge-policy: %d chains, %d rules, %d sets and maps, %d elements (largest set %d)\n",
		k.Chains, k.Rules, k.Sets, k.Elements, k.LargestSet)
	fmt.Fprintf(out, "new connection to an isolated pod, p50 of %d: %.1f µs with this table, %.1f µs with %d elements (2 policies, 2 pods): %.2fx\n",
		r.Connect.N, r.Connect.FullP50us, r.Connect.SmallP50us, r.SmallKernel.Elements, r.Connect.Ratio)
	fmt.Fprintf(out, "agent: %d isolated pod addresses, %d rules compiled, compile and write of the full table %.1f ms\n",
		a.Isolated, a.Rules, a.WriteMs)
	fmt.Fprintf(out, "agent API requests during the %d changes: %d (it watches; nothing is listed per change)\n", r.changeCount(), r.APIRequests)
	fmt.Fprintf(out, "agent memory: RSS %.1f MB, peak %.1f MB\n", r.Memory.RSSMB, r.Memory.PeakMB)
	root := "unchanged"
	if r.RootChanges != "" {
		root = "CHANGED:\n" + r.RootChanges
	}
	fmt.Fprintf(out, "root netns: %s\ntargets met: %s\n", root, yesNo(r.Met))
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}

func (r *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
