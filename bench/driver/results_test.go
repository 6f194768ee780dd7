package main

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestRowOf(t *testing.T) {
	add := msList(10, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 20) // 20 ADDs
	r := roundResult{
		Plugin: nameNodebridge, Spec: roundSpec{Name: "seq-20", Pods: 20, Workers: 1},
		Add:   phase{Times: add, Wall: 60 * time.Millisecond},
		Del:   phase{Times: msList(2, 2), Wall: 40 * time.Millisecond, Failures: 1, FirstErr: errors.New("boom")},
		Rules: ruleCounts{Base: 0, AfterAdd: 4, AfterDel: 0},
	}
	got := rowOf(r)
	if got.Del == nil || got.Del.P50 != ms(2*time.Millisecond) {
		t.Errorf("Del = %+v, want p50 2ms", got.Del)
	}
	if got.Total != ms(100*time.Millisecond) || got.OpsPerSec != 220 {
		t.Errorf("Total, OpsPerSec = %v, %v; want 100ms, 220 (22 calls in 0.1 s)", got.Total, got.OpsPerSec)
	}
	if got.First10 != ms(1900*time.Microsecond) || got.Last10 != ms(2900*time.Microsecond) {
		t.Errorf("First10, Last10 = %v, %v; want 1.9ms, 2.9ms", got.First10, got.Last10)
	}
	if got.Failures != 1 || got.FirstError != "boom" || got.Rules.AfterAdd != 4 {
		t.Errorf("Failures, FirstError, Rules = %d, %q, %+v", got.Failures, got.FirstError, got.Rules)
	}
	noDel := rowOf(roundResult{Plugin: nameFloorAdd, Add: phase{Times: msList(3), Wall: 3 * time.Millisecond}})
	if noDel.Del != nil {
		t.Errorf("a plugin without DEL got Del %+v", noDel.Del)
	}
}

func TestRatios(t *testing.T) {
	specs := []roundSpec{{Name: "seq-10", Pods: 10, Workers: 1}, {Name: "seq-20", Pods: 20, Workers: 1}}
	rows := []roundRow{
		row("seq-10", nameFloorAdd, 2, 0, 0, 0),
		row("seq-10", nameNodebridge, 4, 2, 4, 0),
		row("seq-10", nameNodebridgeNFT, 5, 3, 4, 0),
		row("seq-10", nameReference, 20, 18, 30, 0),
		row("seq-20", nameNodebridge, 4, 2, 4, 0), // no reference: no ratio row
		row("seq-20", nameNodebridgeNFT, 4, 2, 4, 0),
	}
	got := ratios(rows, specs)
	if len(got) != 2 {
		t.Fatalf("ratios = %+v, want a row per nodebridge row of seq-10", got)
	}
	tests := []struct {
		plugin                     string
		add, del, floor, total, tp float64
	}{
		{nameNodebridge, 5, 9, 2, 38.0 / 6, 38.0 / 6},
		{nameNodebridgeNFT, 4, 6, 2.5, 38.0 / 8, 38.0 / 8},
	}
	for i, tt := range tests {
		r := got[i]
		if r.Round != "seq-10" || r.Plugin != tt.plugin || r.AddP50 != tt.add || r.DelP50 != tt.del || r.FloorAdd != tt.floor {
			t.Errorf("ratio row %d = %+v, want seq-10 %s ADD %v DEL %v floor %v", i, r, tt.plugin, tt.add, tt.del, tt.floor)
		}
		if math.Abs(r.Total-tt.total) > 0.01 || math.Abs(r.Throughput-tt.tp) > 0.01 {
			t.Errorf("%s Total, Throughput = %v, %v; want %.2f, %.2f", tt.plugin, r.Total, r.Throughput, tt.total, tt.tp)
		}
	}
}
