package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// goodReport is a run that meets every target.
func goodReport() *report {
	return &report{
		Setup:     setup{Nodes: 1000, Churn: 100, Workers: 32, Resync: "2s"},
		Create:    convergence{Changes: 999, Converged: true, AfterLastMs: 120, RoutesSeen: 999, RoutesWanted: 999},
		Reconcile: &reconciles{SamplesMs: []float64{5, 6, 7}, MedianMs: 6, MaxMs: 7, MeanMs: 6},
		Churn:     convergence{Changes: 200, Converged: true, AfterLastMs: 90, RoutesSeen: 999, RoutesWanted: 999},
		Memory:    memoryReport{End: memory{VmRSSKiB: 32000, VmHWMKiB: 35000}},
		API: apiReport{NodeChanges: 1199, AgentDuringRun: 0,
			ServerBeforeAgent: serverNodeRequests{OpenWatches: 1},
			ServerDuringRun:   serverNodeRequests{OpenWatches: 2, Admin: 1199}},
	}
}

func TestJudge(t *testing.T) {
	tests := []struct {
		name   string
		spoil  func(r *report)
		unmet  string // the one target that must fail; "" for none
		figure string // a substring of that target's figure
	}{
		{"all met", func(*report) {}, "", ""},
		{"slow creates", func(r *report) { r.Create.AfterLastMs = 5001 }, "routes after the last of 999 creates", "5001 ms"},
		{"creates never converged", func(r *report) { r.Create.Converged, r.Create.RoutesSeen = false, 640 },
			"routes after the last of 999 creates", "not within"},
		{"slow reconcile", func(r *report) { r.Reconcile.MedianMs = 50 }, "full reconcile at all routes (median)", "50.0 ms"},
		{"reconcile not measured", func(r *report) { r.Reconcile = nil }, "full reconcile at all routes (median)", "not measured"},
		{"slow churn", func(r *report) { r.Churn.AfterLastMs = 7000 }, "routes after churn (100 deletes + 100 creates)", "7000 ms"},
		{"fat agent", func(r *report) { r.Memory.End.VmHWMKiB = 60000 }, "agent peak RSS (VmHWM)", "61.4 MB"},
		{"a GET per Node", func(r *report) { r.API.ServerDuringRun.Other = 1100 }, "agent API requests over 1199 Node changes", "other 1100"},
		{"requests per Node", func(r *report) { r.API.AgentDuringRun = 1199 }, "agent API requests over 1199 Node changes", "1199 ("},
		{"a second watch", func(r *report) { r.API.ServerDuringRun.OpenWatches = 3 }, "agent API requests over 1199 Node changes", "open watches 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := goodReport()
			tt.spoil(r)
			r.judge()
			if len(r.Targets) != 5 {
				t.Fatalf("%d targets, want 5", len(r.Targets))
			}
			for _, x := range r.Targets {
				if x.Met == (x.Name == tt.unmet) {
					t.Errorf("%s: met %v (figure %q)", x.Name, x.Met, x.Figure)
				}
				if x.Name == tt.unmet && !strings.Contains(x.Figure, tt.figure) {
					t.Errorf("%s: figure %q, want it to hold %q", x.Name, x.Figure, tt.figure)
				}
			}
		})
	}
}

func TestPrint(t *testing.T) {
	r := goodReport()
	r.Create.AfterLastMs = 9000
	r.Warnings = []string{"something odd"}
	r.judge()
	var sb strings.Builder
	r.print(&sb)
	out := sb.String()
	for _, want := range []string{"FIGURE", "routes after the last of 999 creates", "9000 ms", "NOT MET",
		"6.0 ms (max 7.0, mean 6.0, n=3)", "root netns: untouched", "warning: something odd"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// tabwriter aligns the columns: every target row starts its VALUE
	// column at the same offset as the header's.
	lines := strings.Split(out, "\n")
	var header string
	for _, l := range lines {
		if strings.HasPrefix(l, "FIGURE") {
			header = l
		}
	}
	col := strings.Index(header, "VALUE")
	for _, l := range lines {
		if strings.HasPrefix(l, "agent peak RSS") && !strings.HasPrefix(l[col:], "35.8 MB") {
			t.Errorf("row %q: value not under the VALUE header at %d", l, col)
		}
	}
}

func TestWriteJSON(t *testing.T) {
	r := goodReport()
	r.judge()
	path := filepath.Join(t.TempDir(), "out", "bench-agent.json")
	if err := r.writeJSON(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"target": "< 50 ms"`) {
		t.Errorf("JSON escapes or lacks the reconcile target:\n%s", b)
	}
	var back report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Create.AfterLastMs != 120 || back.API.ServerBeforeAgent.OpenWatches != 1 || len(back.Targets) != 5 {
		t.Errorf("JSON round trip lost figures: %+v", back)
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{nil, 0}, {[]float64{3}, 3}, {[]float64{1, 2, 9}, 2}, {[]float64{1, 2, 4, 9}, 3},
	}
	for _, tt := range tests {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
