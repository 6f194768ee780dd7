package main

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ten := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	tests := []struct {
		name   string
		sorted []float64
		p      float64
		want   float64
	}{
		{"empty", nil, 50, 0},
		{"one", []float64{7}, 90, 7},
		{"p50 of ten", ten, 50, 5},
		{"p90 of ten", ten, 90, 9},
		{"p100 of ten", ten, 100, 10},
		{"p0 is the smallest", ten, 0, 1},
		{"p50 of three", []float64{1, 2, 3}, 50, 2},
		{"p90 of thirty", seq(30), 90, 27},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
}

// seq is 1..n.
func seq(n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = float64(i + 1)
	}
	return s
}

func TestSummarizeLeavesInputAlone(t *testing.T) {
	in := []float64{30, 10, 20}
	l := summarize(in)
	if l != (latency{N: 3, P50Ms: 20, P90Ms: 30, MaxMs: 30}) {
		t.Errorf("summarize(%v) = %+v", in, l)
	}
	if in[0] != 30 || in[1] != 10 {
		t.Errorf("summarize sorted its input: %v", in)
	}
}

func TestRoundFill(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	created := []time.Time{t0, t0.Add(10 * time.Millisecond), t0.Add(20 * time.Millisecond)}
	ready := map[string]readyPod{
		podName(2, 0): {name: podName(2, 0), node: "node-1", ip: "10.244.1.2", at: t0.Add(1500 * time.Millisecond)},
		podName(2, 1): {name: podName(2, 1), node: "node-2", ip: "10.244.2.2", at: t0.Add(1010 * time.Millisecond)},
		podName(2, 2): {name: podName(2, 2), node: "node-1", ip: "10.244.1.3", at: t0.Add(2020 * time.Millisecond)},
	}
	var rr roundResult
	rr.fill(created, ready, 2)
	if want := (latency{N: 3, P50Ms: 1500, P90Ms: 2000, MaxMs: 2000}); rr.Latency != want {
		t.Errorf("latency %+v, want %+v", rr.Latency, want)
	}
	if rr.AllReadyMs != 2020 {
		t.Errorf("all Ready after %v ms, want 2020", rr.AllReadyMs)
	}
	if rr.PerNode["node-1"] != 2 || rr.PerNode["node-2"] != 1 {
		t.Errorf("pods per node %v, want node-1: 2, node-2: 1", rr.PerNode)
	}
	if p := rr.Pods[1]; p.Name != "ps-2-01" || p.Node != "node-2" || p.IP != "10.244.2.2" || p.Ms != 1000 {
		t.Errorf("pod 1: %+v", p)
	}
}

func TestNetworkSummarizePoolsRounds(t *testing.T) {
	r := networkResult{Rounds: []roundResult{
		{Pods: []podResult{{Ms: 1}, {Ms: 2}}},
		{Pods: []podResult{{Ms: 3}, {Ms: 4}}},
	}}
	r.summarize()
	if want := (latency{N: 4, P50Ms: 2, P90Ms: 4, MaxMs: 4}); r.All != want {
		t.Errorf("pooled %+v, want %+v", r.All, want)
	}
}
