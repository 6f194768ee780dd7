package main

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// report is what a run measured.
type report struct {
	Time   time.Time    `json:"time"`
	CPUs   int          `json:"cpus"`
	Setup  setup        `json:"setup"`
	Paths  []pathResult `json:"paths"`
	Ratios []ratio      `json:"ratios"`
	// RootChanges lists what changed in the root netns during the run;
	// empty, as it must be.
	RootChanges string `json:"root_changes"`
}

// setup is how the run measured.
type setup struct {
	Duration    string `json:"throughput_sample"`
	Pings       int    `json:"round_trips_per_sample"`
	Rounds      int    `json:"rounds"`
	UnderlayMTU int    `json:"underlay_mtu"`
}

// pathResult is one path's samples and what they come to.
type pathResult struct {
	Name       string    `json:"path"`
	Gbps       []float64 `json:"gbit_s_samples"`
	GbpsMedian float64   `json:"gbit_s_median"`
	P50us      float64   `json:"rtt_p50_us"`
	P99us      float64   `json:"rtt_p99_us"`
	rtts       []time.Duration
}

// ratio compares two paths' medians.
type ratio struct {
	What       string  `json:"what"`
	Throughput float64 `json:"throughput"`
	RTTp50     float64 `json:"rtt_p50"`
}

// summarise works out the medians, percentiles and ratios.
func (r *report) summarise() {
	r.CPUs = runtime.NumCPU()
	for i := range r.Paths {
		p := &r.Paths[i]
		s := slices.Sorted(slices.Values(p.Gbps))
		p.GbpsMedian = s[len(s)/2]
		p.P50us = float64(percentile(p.rtts, 50)) / 1e3
		p.P99us = float64(percentile(p.rtts, 99)) / 1e3
	}
	if len(r.Paths) < 3 {
		return
	}
	node, gw, vx := r.Paths[0], r.Paths[1], r.Paths[2]
	r.Ratios = []ratio{
		{What: "host-gw / node to node", Throughput: gw.GbpsMedian / node.GbpsMedian, RTTp50: gw.P50us / node.P50us},
		{What: "VXLAN / host-gw", Throughput: vx.GbpsMedian / gw.GbpsMedian, RTTp50: vx.P50us / gw.P50us},
		{What: "VXLAN / node to node", Throughput: vx.GbpsMedian / node.GbpsMedian, RTTp50: vx.P50us / node.P50us},
	}
}

// print writes the table.
func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "\nData path: two nodes on one %d-byte underlay (a veth pair), %d rounds, paths taking turns; %d CPUs\n",
		r.Setup.UnderlayMTU, r.Setup.Rounds, r.CPUs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "path\tTCP Gbit/s (median)\tsamples\tRTT p50\tRTT p99")
	for _, p := range r.Paths {
		var s []string
		for _, g := range p.Gbps {
			s = append(s, fmt.Sprintf("%.2f", g))
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%s\t%.1f µs\t%.1f µs\n", p.Name, p.GbpsMedian, strings.Join(s, " "), p.P50us, p.P99us)
	}
	fmt.Fprintln(tw, "\nratio\tthroughput\t\tRTT p50")
	for _, q := range r.Ratios {
		fmt.Fprintf(tw, "%s\t%.2fx\t\t%.2fx\n", q.What, q.Throughput, q.RTTp50)
	}
	tw.Flush()
	if r.RootChanges == "" {
		fmt.Fprintln(w, "root netns: unchanged")
	} else {
		fmt.Fprintf(w, "root netns CHANGED:\n%s\n", r.RootChanges)
	}
}
