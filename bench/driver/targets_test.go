package main

import (
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
		row("seq-300", nameNodebridgeNFT, 5, 4, 4, 0),
		row("seq-300", nameReference, 30, 25, 900, 0),
		row("par-100", nameNodebridge, 5, 4, 4, 0),
		row("par-100", nameNodebridgeNFT, 5, 4, 4, 0),
		row("par-100", nameReference, 30, 25, 300, 0),
	}
	add := func(nb string) string { return "seq-300: ADD p50 reference / " + nb }
	del := func(nb string) string { return "seq-300: DEL p50 reference / " + nb }
	floor := func(nb string) string { return "seq-300: ADD p50 " + nb + " / floor-add" }
	par := func(nb string) string { return "parallel par-100: ops/s " + nb + " / reference, no failures" }
	drift := func(nb string) string { return "seq-300: " + nb + " mean of last 10 ADDs / first 10" }
	rules := func(nb string) string { return nb + " rules after ADDs constant over rounds" }
	nb, nft := nameNodebridge, nameNodebridgeNFT
	drifting := row("seq-300", nft, 5, 4, 4, 0)
	drifting.Last10 *= 2
	tests := []struct {
		name    string
		rows    []roundRow
		want    map[string]bool // target name -> met
		wantLen int
	}{
		{"all met", fast, map[string]bool{
			add(nb): true, del(nb): true, floor(nb): true, par(nb): true, drift(nb): true, rules(nb): true,
			add(nft): true, del(nft): true, floor(nft): true, par(nft): true, drift(nft): true, rules(nft): true}, 12},
		{"slow nodebridge-nft", replace(fast, row("seq-300", nft, 10, 4, 4, 0)), map[string]bool{
			add(nft): false, del(nft): true, floor(nft): false, add(nb): true, floor(nb): true}, 12},
		{"failures spoil the ratio", replace(fast, row("par-100", nft, 5, 4, 4, 1)), map[string]bool{
			par(nft): false, par(nb): true, add(nft): true}, 12},
		{"nft ADDs slow down", replace(fast, drifting), map[string]bool{drift(nft): false, drift(nb): true}, 12},
		{"nft rules grow with pods", replace(fast, row("par-100", nft, 5, 4, 5, 0)), map[string]bool{
			rules(nft): false, rules(nb): true}, 12},
		{"no rules counted", replace(replace(fast, row("par-100", nb, 5, 4, 0, 0)), row("seq-300", nb, 5, 4, 0, 0)),
			map[string]bool{rules(nb): false, rules(nft): true}, 12},
		{"no reference: drift and rules only", fast[:3], map[string]bool{
			drift(nb): true, drift(nft): true, rules(nb): true, rules(nft): true}, 4},
		{"no nft rows: no nft targets", []roundRow{fast[0], fast[1], fast[3], fast[4], fast[6]}, map[string]bool{
			add(nb): true, par(nb): true, rules(nb): true}, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := evaluate(tt.rows, specs, nil)
			if len(got) != tt.wantLen {
				t.Errorf("evaluate gave %d targets, want %d: %+v", len(got), tt.wantLen, got)
			}
			v := verdicts(got)
			for name, met := range tt.want {
				if gotMet, ok := v[name]; !ok {
					t.Errorf("no target named %q; got %v", name, v)
				} else if gotMet != met {
					t.Errorf("target %q met = %v, want %v", name, gotMet, met)
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
