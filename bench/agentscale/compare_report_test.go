package main

import (
	"strings"
	"testing"
)

func TestNewRow(t *testing.T) {
	tests := []struct {
		name               string
		agent, flannel     float64
		agentOK, flannelOK bool
		met                bool
		ratio, agentFigure string
	}{
		{"agent ahead", 13, 117, true, true, true, "0.11x", "13.0 ms"},
		{"a few ms", 3.46, 3.2, true, true, false, "1.08x", "3.5 ms"},
		{"a tie", 50, 50, true, true, true, "1.00x", "50.0 ms"},
		{"agent behind", 234, 117, true, true, false, "2.00x", "234 ms"},
		{"flannel never converged", 900, 60000, true, false, true, "-", "900 ms"},
		{"agent never converged", 60000, 100, false, true, false, "-", "not within 60000 ms"},
		{"both zero", 0, 0, true, true, true, "-", "0.0 ms"},
	}
	for _, tt := range tests {
		r := newRow("x", "ms", tt.agent, tt.flannel, tt.agentOK, tt.flannelOK)
		if r.Met != tt.met || r.ratio() != tt.ratio || r.figure(r.Agent, r.AgentOK) != tt.agentFigure {
			t.Errorf("%s: met %v ratio %q figure %q, want %v %q %q", tt.name, r.Met, r.ratio(), r.figure(r.Agent, r.AgentOK),
				tt.met, tt.ratio, tt.agentFigure)
		}
	}
}

// results are a plausible side-by-side run: the agent ahead on memory and
// repair, behind on the rest.
func results() (contenderResult, contenderResult) {
	a := contenderResult{Name: "nodebridge-agent", CreateMs: []float64{240, 230, 250}, DeleteMs: []float64{220},
		Batch:    convergence{Changes: 999, Converged: true, AfterLastMs: 178},
		Churn:    convergence{Changes: 200, Converged: true, AfterLastMs: 150},
		RepairMs: []float64{130}, PeakRSSKiB: 35 * 1024, ChurnCPUSeconds: 0.3, Protocols: []string{"78"}}
	f := contenderResult{Name: "flanneld", CreateMs: []float64{117, 110, 120}, DeleteMs: []float64{106},
		Batch:    convergence{Changes: 999, Converged: true, AfterLastMs: 66},
		Churn:    convergence{Changes: 200, Converged: false, AfterLastMs: 60000},
		RepairMs: []float64{4200}, PeakRSSKiB: 62 * 1024, ChurnCPUSeconds: 0.2, Protocols: []string{"boot"}}
	return a, f
}

func TestCompareRows(t *testing.T) {
	a, f := results()
	rows := compareRows(a, f)
	want := []struct {
		name           string
		agent, flannel float64
		met            bool
	}{
		{"single create -> route (p50 of 3)", 240, 117, false},
		{"single delete -> route gone (p50 of 1)", 220, 106, false},
		{"999-Node batch -> all routes, after the last create", 178, 66, false},
		{"churn 100 deletes + 100 creates -> converged, after the last", 150, 60000, true},
		{"repair: route deleted by hand -> back (p50 of 1)", 130, 4200, true},
		{"peak RSS (VmHWM) at the end", 35, 62, true},
		{"CPU over the churn (utime+stime)", 0.3, 0.2, false},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d", len(rows), len(want))
	}
	for i, w := range want {
		r := rows[i]
		if r.Name != w.name || r.Agent != w.agent || r.Flannel != w.flannel || r.Met != w.met {
			t.Errorf("row %d: %+v, want %+v", i, r, w)
		}
	}
}

func TestComparisonPrint(t *testing.T) {
	a, f := results()
	c := &comparison{Results: []contenderResult{a, f}, Rows: compareRows(a, f)}
	var b strings.Builder
	c.print(&b)
	out := b.String()
	for _, s := range []string{"AGENT/FLANNEL", "2.05x", "not within 60000 ms", "35.00 MiB", "NOT MET", "nodebridge-agent: proto 78", "flanneld: proto boot"} {
		if !strings.Contains(out, s) {
			t.Errorf("table lacks %q:\n%s", s, out)
		}
	}
	b.Reset()
	(&comparison{Skipped: "no -flannel"}).print(&b)
	if !strings.Contains(b.String(), "skipped: no -flannel") || strings.Contains(b.String(), "FIGURE") {
		t.Errorf("skipped comparison printed:\n%s", b.String())
	}
	b.Reset()
	var none *comparison
	none.print(&b)
	if b.Len() != 0 {
		t.Errorf("nil comparison printed %q", b.String())
	}
}
