package main

import (
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"-rounds", "3", "-duration", "1s"})
	if err != nil || o.rounds != 3 || o.duration != time.Second || o.pings != 5000 {
		t.Errorf("got %+v %v", o, err)
	}
	for _, bad := range [][]string{{"-rounds", "0"}, {"-pings", "10"}, {"-duration", "0s"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i))
	}
	if p50, p99 := percentile(ds, 50), percentile(ds, 99); p50 != 50 || p99 != 99 {
		t.Errorf("p50 %v p99 %v, want 50 and 99", p50, p99)
	}
	if percentile(nil, 50) != 0 {
		t.Error("empty: not 0")
	}
}

func TestSummariseRatios(t *testing.T) {
	r := &report{Paths: []pathResult{
		{Name: "node", Gbps: []float64{10, 12, 11}, rtts: []time.Duration{4000}},
		{Name: "gw", Gbps: []float64{9, 9, 9}, rtts: []time.Duration{5000}},
		{Name: "vx", Gbps: []float64{6, 6, 6}, rtts: []time.Duration{6000}},
	}}
	r.summarise()
	if r.Paths[0].GbpsMedian != 11 || r.Paths[1].P50us != 5 {
		t.Errorf("medians: %+v", r.Paths)
	}
	if q := r.Ratios[1]; q.What != "VXLAN / host-gw" || q.Throughput != 6.0/9 || q.RTTp50 != 1.2 {
		t.Errorf("VXLAN / host-gw: %+v", q)
	}
}
