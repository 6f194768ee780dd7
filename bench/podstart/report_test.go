package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReportRatioAndTable(t *testing.T) {
	tests := []struct {
		name      string
		networks  []networkResult
		wantRatio *ratio
		wantLine  string
	}{
		{
			name: "both",
			networks: []networkResult{
				{Network: "nodebridge", Plugin: "nodebridge", All: latency{N: 30, P50Ms: 1000, P90Ms: 2000}},
				{Network: "reference", Plugin: "bridge", All: latency{N: 30, P50Ms: 1500, P90Ms: 5000}},
			},
			wantRatio: &ratio{P50: 1.5, P90: 2.5},
			wantLine:  "reference / nodebridge: p50 1.50x, p90 2.50x",
		},
		{
			name:     "one network: no ratio",
			networks: []networkResult{{Network: "reference", Plugin: "bridge", All: latency{N: 30, P50Ms: 1500, P90Ms: 5000}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReport(options{nodes: 3, pods: 30, rounds: 1})
			r.Networks = tt.networks
			r.finish("")
			if (r.Ratio == nil) != (tt.wantRatio == nil) || (r.Ratio != nil && *r.Ratio != *tt.wantRatio) {
				t.Errorf("ratio %+v, want %+v", r.Ratio, tt.wantRatio)
			}
			var sb strings.Builder
			r.print(&sb)
			out := sb.String()
			if tt.wantLine != "" && !strings.Contains(out, tt.wantLine) {
				t.Errorf("table lacks %q:\n%s", tt.wantLine, out)
			}
			if !strings.Contains(out, "machine: unchanged") {
				t.Errorf("table does not say the machine is unchanged:\n%s", out)
			}
		})
	}
}

func TestReportSaysMachineChanged(t *testing.T) {
	r := newReport(options{nodes: 3, pods: 30, rounds: 1})
	r.finish("+ netns nbd10ff-lab-000001\n")
	var sb strings.Builder
	r.print(&sb)
	if !strings.Contains(sb.String(), "machine CHANGED during the run:\n+ netns nbd10ff-lab-000001") {
		t.Errorf("table hides the change:\n%s", sb.String())
	}
}

func TestReportJSONRoundTrip(t *testing.T) {
	r := newReport(options{nodes: 3, pods: 2, rounds: 1})
	r.Networks = []networkResult{{Network: "nodebridge", Plugin: "nodebridge", ClusterUpMs: 4000,
		Rounds: []roundResult{{Round: 1, PerNode: map[string]int{"node-1": 2},
			Pods: []podResult{{Name: "ps-1-00", Node: "node-1", IP: "10.244.1.2", Ms: 900}}}}}}
	r.finish("")
	path := filepath.Join(t.TempDir(), "out", "bench-podstart.json")
	if err := r.writeJSON(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got report
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if p := got.Networks[0].Rounds[0].Pods[0]; p.Name != "ps-1-00" || p.Ms != 900 || got.Setup.Measured != measuredAs {
		t.Errorf("read back %+v, setup %+v", p, got.Setup)
	}
	if !strings.Contains(string(b), `"machine_changes": ""`) {
		t.Errorf("JSON lacks an empty machine_changes:\n%s", b)
	}
}
