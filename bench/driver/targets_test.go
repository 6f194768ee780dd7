package main

import (
	"strings"
	"testing"
	"time"
)

// row builds a round row with the given ADD/DEL p50 in ms and rules after ADD.
func row(round, plugin string, add, del float64, rules, failures int) roundRow {
	m := func(v float64) ms { return ms(time.Duration(v * float64(time.Millisecond))) }
	r := roundRow{Round: round, Plugin: plugin, Add: summary{P50: m(add)}, Rules: ruleCounts{AfterAdd: rules},
		Failures: failures, First10: m(add), Last10: m(add), Total: m(add + del), OpsPerSec: 1000 / (add + del)}
	if plugin != nameFloorAdd {
		r.Del = &summary{P50: m(del)}
	}
	return r
}

func verdicts(ts []target) map[string]bool {
	out := map[string]bool{}
	for _, t := range ts {
		out[t.Name] = t.Met
	}
	return out
}

func TestEvaluate(t *testing.T) {
	specs := []roundSpec{{Name: "seq-300", Pods: 300, Workers: 1}, {Name: "par-100", Pods: 100, Workers: 8}}
	fast := []roundRow{
		row("seq-300", nameFloorAdd, 4, 0, 0, 0),
		row("seq-300", nameNodebridge, 5, 4, 4, 0),
		row("seq-300", nameReference, 30, 25, 900, 0),
		row("par-100", nameNodebridge, 5, 4, 4, 0),
		row("par-100", nameReference, 30, 25, 300, 0),
	}
	tests := []struct {
		name    string
		rows    []roundRow
		want    map[string]bool // target name prefix -> met
		wantLen int
	}{
		{"all met", fast, map[string]bool{
			"seq-300: ADD p50 reference": true, "seq-300: DEL p50 reference": true, "seq-300: ADD p50 nodebridge / floor-add": true,
			"parallel par-100": true, "seq-300: nodebridge mean": true, "nodebridge rules": true}, 6},
		{"slow nodebridge", replace(fast, row("seq-300", nameNodebridge, 10, 4, 4, 0)), map[string]bool{
			"seq-300: ADD p50 reference": false, "seq-300: DEL p50 reference": true, "seq-300: ADD p50 nodebridge / floor-add": false}, 6},
		{"failures spoil the ratio", replace(fast, row("par-100", nameNodebridge, 5, 4, 4, 1)), map[string]bool{
			"parallel par-100": false, "seq-300: ADD p50 reference": true}, 6},
		{"rules grow with pods", replace(fast, row("par-100", nameNodebridge, 5, 4, 5, 0)), map[string]bool{
			"nodebridge rules": false}, 6},
		{"no reference row: no ratio targets", fast[:2], map[string]bool{"nodebridge rules": true}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := evaluate(tt.rows, specs, nil)
			if len(got) != tt.wantLen {
				t.Errorf("evaluate gave %d targets, want %d: %+v", len(got), tt.wantLen, got)
			}
			v := verdicts(got)
			for prefix, met := range tt.want {
				found := false
				for name, gotMet := range v {
					if strings.HasPrefix(name, prefix) {
						found = true
						if gotMet != met {
							t.Errorf("target %q met = %v, want %v", name, gotMet, met)
						}
					}
				}
				if !found {
					t.Errorf("no target named %q...; got %v", prefix, v)
				}
			}
		})
	}
}

// replace returns rows with the row of the same round and plugin as r swapped for r.
func replace(rows []roundRow, r roundRow) []roundRow {
	out := append([]roundRow(nil), rows...)
	for i := range out {
		if out[i].Round == r.Round && out[i].Plugin == r.Plugin {
			out[i] = r
		}
	}
	return out
}

func TestIPAMTargets(t *testing.T) {
	cell := func(add, del time.Duration) scaleCell {
		return scaleCell{Add: summary{P50: ms(add)}, Del: summary{P50: ms(del)}}
	}
	scale := []scaleRow{
		{Fill: 10, Nodebridge: cell(2*time.Millisecond, 2*time.Millisecond)},
		{Fill: 10000, Nodebridge: cell(2500*time.Microsecond, 4*time.Millisecond)},
	}
	got := ipamTargets(scale)
	if len(got) != 2 {
		t.Fatalf("ipamTargets gave %d targets, want 2: %+v", len(got), got)
	}
	if !got[0].Met || got[0].Value != 1.25 {
		t.Errorf("ADD target = %+v, want met at 1.25", got[0])
	}
	if got[1].Met || got[1].Value != 2 {
		t.Errorf("DEL target = %+v, want not met at 2", got[1])
	}
	if ipamTargets(scale[:1]) != nil {
		t.Error("ipamTargets with one fill: want no target")
	}
}
