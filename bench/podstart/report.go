package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// measuredAs says what a figure is, in the report itself.
const measuredAs = "creation → Ready per pod: from just before its create request to the watch event " +
	"showing its Ready condition True, on this process's clock (the API's timestamps have whole seconds only)"

// report is everything a run measured, printed as a table and written as
// JSON for tracking from run to run.
type report struct {
	Time     time.Time       `json:"time"`
	Machine  machine         `json:"machine"`
	Setup    setup           `json:"setup"`
	Networks []networkResult `json:"networks"`
	// Ratio is reference / nodebridge, when both ran.
	Ratio *ratio `json:"ratio_reference_over_nodebridge,omitempty"`
	// MachineChanges lists what changed on the machine during the run
	// (root netns, named netns of this run, kubelet's sysctls, the CNI,
	// containerd and kubelet dirs); empty, as it must be.
	MachineChanges string `json:"machine_changes"`
}

// machine is where the run ran; other work on it shows in the load.
type machine struct {
	CPUs      int    `json:"cpus"`
	Go        string `json:"go"`
	Kernel    string `json:"kernel"`
	LoadStart string `json:"load_start"`
	LoadEnd   string `json:"load_end"`
}

// setup is what the run was asked to do.
type setup struct {
	Nodes    int    `json:"nodes"`
	Pods     int    `json:"pods_per_round"`
	Rounds   int    `json:"rounds"`
	Measured string `json:"measured"`
}

// ratio compares the pooled figures of the two networks.
type ratio struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
}

// newReport starts a report for o.
func newReport(o options) *report {
	kernel, _ := exec.Command("uname", "-r").Output() // informational only
	return &report{Time: time.Now(),
		Machine: machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), Kernel: strings.TrimSpace(string(kernel)), LoadStart: loadAvg()},
		Setup:   setup{Nodes: o.nodes, Pods: o.pods, Rounds: o.rounds, Measured: measuredAs}}
}

// finish adds what is known only at the end.
func (r *report) finish(machineChanges string) {
	r.Machine.LoadEnd = loadAvg()
	r.MachineChanges = machineChanges
	var nb, ref *latency
	for i := range r.Networks {
		switch r.Networks[i].Network {
		case "nodebridge":
			nb = &r.Networks[i].All
		case "reference":
			ref = &r.Networks[i].All
		}
	}
	if nb != nil && ref != nil && nb.P50Ms > 0 && nb.P90Ms > 0 {
		r.Ratio = &ratio{P50: ref.P50Ms / nb.P50Ms, P90: ref.P90Ms / nb.P90Ms}
	}
}

// print writes the table.
func (r *report) print(out io.Writer) {
	fmt.Fprintf(out, "\npod start under kubelet: %d pods per round over %d nodes, %d CPUs, load %s → %s\n",
		r.Setup.Pods, r.Setup.Nodes, r.Machine.CPUs, r.Machine.LoadStart, r.Machine.LoadEnd)
	fmt.Fprintf(out, "%s\n\n", r.Setup.Measured)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "network\tplugin\tround\tpods\tp50 ms\tp90 ms\tmax ms\tall Ready ms\tgone ms\t")
	for _, n := range r.Networks {
		for _, rr := range n.Rounds {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t\n", n.Network, n.Plugin, rr.Round,
				rr.Latency.N, rr.Latency.P50Ms, rr.Latency.P90Ms, rr.Latency.MaxMs, rr.AllReadyMs, rr.GoneMs)
		}
		fmt.Fprintf(tw, "%s\t%s\tall\t%d\t%.0f\t%.0f\t%.0f\t\t\t\n", n.Network, n.Plugin,
			n.All.N, n.All.P50Ms, n.All.P90Ms, n.All.MaxMs)
	}
	tw.Flush()
	if r.Ratio != nil {
		fmt.Fprintf(out, "\nreference / nodebridge: p50 %.2fx, p90 %.2fx\n", r.Ratio.P50, r.Ratio.P90)
	}
	if r.MachineChanges == "" {
		fmt.Fprintln(out, "machine: unchanged (root netns, named netns, kubelet sysctls, CNI/containerd/kubelet dirs)")
	} else {
		fmt.Fprintf(out, "machine CHANGED during the run:\n%s", r.MachineChanges)
	}
}

// writeJSON writes the report to path, making its dir.
func (r *report) writeJSON(path string) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("make dir of %s: %w", path, err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write report %s: %w", path, err)
	}
	fmt.Printf("figures written to %s\n", path)
	return nil
}

// loadAvg is the first three fields of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}
