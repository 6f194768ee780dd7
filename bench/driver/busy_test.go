package main

import (
	"math"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"
)

func TestParseBusyFlags(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantShapes []string
		wantErr    bool
	}{
		{"defaults", nil, []string{"iptables", "nftables"}, false},
		{"off", []string{"-busy", ""}, nil, false},
		{"off: the other flags unchecked", []string{"-busy", "", "-busy-services", "0"}, nil, false},
		{"one shape", []string{"-busy", " nftables "}, []string{"nftables"}, false},
		{"unknown shape", []string{"-busy", "iptables,ipvs"}, nil, true},
		{"no Service", []string{"-busy-services", "0"}, nil, true},
		{"more Services than ClusterIPs", []string{"-busy-services", "70000"}, nil, true},
		{"no resync period", []string{"-busy-resync", "0s"}, nil, true},
		{"no pod", []string{"-busy-n", "0"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseFlags(tt.args)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseFlags(%q) error = %v, want error %v", tt.args, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			var names []string
			for _, sh := range o.busy {
				names = append(names, sh.Name)
			}
			if !slices.Equal(names, tt.wantShapes) {
				t.Errorf("shapes = %v, want %v", names, tt.wantShapes)
			}
		})
	}
	o, err := parseFlags(nil)
	if err != nil || o.busyServices != 3000 || o.busyResync != 500*time.Millisecond || o.busyN != 30 {
		t.Errorf("defaults = %d Services, resync %v, %d pods, %v; want 3000, 500ms, 30", o.busyServices, o.busyResync, o.busyN, err)
	}
}

// A busy round per shape, with the sequential rounds' plugins and an idle
// round of as many pods to compare with, added when -n lacks it.
func TestBusyRounds(t *testing.T) {
	ipt, nft := mustShape(t, "iptables"), mustShape(t, "nftables")
	tests := []struct {
		name string
		seq  []int
		busy []loadShape
		want []string
	}{
		{"idle round added", []int{100, 300}, []loadShape{ipt, nft}, []string{"seq-30", "seq-100", "seq-300", "par-20", "busy-ipt-30", "busy-nft-30"}},
		{"idle round there", []int{30, 100}, []loadShape{nft}, []string{"seq-30", "seq-100", "par-20", "busy-nft-30"}},
		{"no busy round", []int{100}, nil, []string{"seq-100", "par-20"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := options{plugin: "/x/nodebridge", tools: "/t", bin: "/b", seq: tt.seq, parPods: 20, workers: 4,
				busy: tt.busy, busyServices: 3000, busyResync: time.Second, busyN: 30}
			specs, plugins := o.rounds(newPrograms(o, network{}))
			var names []string
			for _, s := range specs {
				names = append(names, s.Name)
				if s.Load == nil {
					continue
				}
				if s.Pods != 30 || s.Workers != 1 || s.Load.services != 3000 || s.Load.resync != time.Second || len(plugins[s.Name]) != 4 {
					t.Errorf("%s: %+v, load %+v, %d plugins", s.Name, s, s.Load, len(plugins[s.Name]))
				}
			}
			if !slices.Equal(names, tt.want) {
				t.Errorf("rounds = %v, want %v", names, tt.want)
			}
			if idle := idleSpecs(specs); len(idle) != len(specs)-len(tt.busy) {
				t.Errorf("idleSpecs kept %d of %d rounds, want all but the %d busy", len(idle), len(specs), len(tt.busy))
			}
			if !slices.Equal(o.seq, tt.seq) {
				t.Errorf("rounds changed -n to %v", o.seq)
			}
		})
	}
}

// busyRow is a row of busy-ipt-30 in a node whose load synced syncs times,
// failed failed times.
func busyRow(plugin string, add, del float64, syncs, failed int) roundRow {
	r := row("busy-ipt-30", plugin, add, del, 21030, 0)
	r.Load = &loadRun{Shape: "iptables", Services: 3000, Rules: 21023, Syncs: syncs, SyncFailures: failed}
	return r
}

func TestBusyRatios(t *testing.T) {
	specs := []roundSpec{{Name: "seq-30", Pods: 30, Workers: 1}, {Name: "busy-ipt-30", Pods: 30, Workers: 1, Load: &busyLoad{}}}
	idle := []roundRow{
		row("seq-30", nameFloorAdd, 2, 0, 0, 0),
		row("seq-30", nameNodebridge, 4, 5, 7, 0),
		row("seq-30", nameReference, 30, 100, 90, 0),
	}
	busy := []roundRow{
		busyRow(nameFloorAdd, 3, 0, 10, 0),
		busyRow(nameNodebridge, 5, 6, 10, 0),
		busyRow(nameNodebridgeNFT, 8, 4, 10, 0), // no idle row: left out
		busyRow(nameReference, 40, 120, 10, 0),
	}
	want := []busyRatio{
		{Round: "busy-ipt-30", Idle: "seq-30", Plugin: nameFloorAdd, AddBusyOverIdle: 1.5},
		{Round: "busy-ipt-30", Idle: "seq-30", Plugin: nameNodebridge, AddBusyOverIdle: 1.25, DelBusyOverIdle: 1.2, AddRefOverNB: 8, DelRefOverNB: 20},
		{Round: "busy-ipt-30", Idle: "seq-30", Plugin: nameReference, AddBusyOverIdle: 40.0 / 30, DelBusyOverIdle: 1.2},
	}
	got := busyRatios(busy, idle, specs)
	if len(got) != len(want) {
		t.Fatalf("busyRatios = %+v, want %d rows", got, len(want))
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	for i, w := range want {
		g := got[i]
		if g.Round != w.Round || g.Idle != w.Idle || g.Plugin != w.Plugin || !near(g.AddBusyOverIdle, w.AddBusyOverIdle) ||
			!near(g.DelBusyOverIdle, w.DelBusyOverIdle) || !near(g.AddRefOverNB, w.AddRefOverNB) || !near(g.DelRefOverNB, w.DelRefOverNB) {
			t.Errorf("row %d = %+v, want %+v", i, g, w)
		}
	}
}

func TestBusyTargets(t *testing.T) {
	specs := []roundSpec{{Name: "busy-ipt-30", Pods: 30, Workers: 1, Load: &busyLoad{}}}
	idle := []roundRow{
		row("seq-30", nameNodebridge, 4, 5, 7, 0),
		row("seq-30", nameNodebridgeNFT, 4, 4, 8, 0),
		row("seq-30", nameReference, 30, 100, 90, 0),
	}
	busy := []roundRow{
		busyRow(nameNodebridge, 5, 6, 10, 0),     // 1.25x, 1.2x idle; reference 8x, 20x
		busyRow(nameNodebridgeNFT, 8, 40, 10, 0), // 2x, 10x idle; reference 5x, 3x
		busyRow(nameReference, 40, 120, 10, 0),
	}
	name := func(what, nb string) string {
		return map[string]string{
			"add": "busy-ipt-30: ADD p50 " + nb + " busy / idle", "del": "busy-ipt-30: DEL p50 " + nb + " busy / idle",
			"refAdd": "busy-ipt-30: ADD p50 reference busy / " + nb + " busy", "refDel": "busy-ipt-30: DEL p50 reference busy / " + nb + " busy",
		}[what]
	}
	nb, nft := nameNodebridge, nameNodebridgeNFT
	tests := []struct {
		name    string
		busy    []roundRow
		idle    []roundRow
		want    map[string]bool
		wantLen int
	}{
		{"as measured", busy, idle, map[string]bool{
			name("add", nb): true, name("del", nb): true, name("refAdd", nb): true, name("refDel", nb): true,
			name("add", nft): false, name("del", nft): false, name("refAdd", nft): true, name("refDel", nft): true}, 8},
		{"a failed sync spoils the node's figures", replace(busy, busyRow(nameNodebridge, 5, 6, 10, 1)), idle, map[string]bool{
			name("add", nb): false, name("refAdd", nb): false, name("refAdd", nft): true}, 8},
		{"no sync: no busy node", replace(busy, busyRow(nameReference, 40, 120, 0, 0)), idle, map[string]bool{
			name("add", nb): true, name("refAdd", nb): false, name("refDel", nft): false}, 8},
		{"failed calls idle", busy, replace(idle, row("seq-30", nameNodebridge, 4, 5, 7, 1)), map[string]bool{
			name("add", nb): false, name("refAdd", nb): true}, 8},
		{"no idle round: reference only", busy, nil, map[string]bool{name("refAdd", nb): true, name("refDel", nft): true}, 4},
		{"no reference: idle only", busy[:2], idle, map[string]bool{name("add", nb): true, name("del", nft): false}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := busyTargets(tt.busy, tt.idle, specs)
			if len(got) != tt.wantLen {
				t.Errorf("busyTargets gave %d targets, want %d: %+v", len(got), tt.wantLen, got)
			}
			v := verdicts(got)
			for n, met := range tt.want {
				if gotMet, ok := v[n]; !ok {
					t.Errorf("no target named %q; got %v", n, v)
				} else if gotMet != met {
					t.Errorf("target %q met = %v, want %v", n, gotMet, met)
				}
			}
		})
	}
}

// The busy table has a line per row compared, floor-add's DEL columns
// empty, then reference over each nodebridge row, and names a failed sync.
func TestBusyPrint(t *testing.T) {
	specs := []roundSpec{{Name: "busy-ipt-30", Pods: 30, Workers: 1, Load: &busyLoad{}}}
	idle := []roundRow{row("seq-30", nameFloorAdd, 2, 0, 0, 0), row("seq-30", nameNodebridge, 4, 5, 7, 0), row("seq-30", nameReference, 30, 100, 90, 0)}
	failed := busyRow(nameReference, 40, 120, 10, 1)
	failed.Load.FirstError = "iptables-restore: boom"
	b := &busyReport{Services: 3000, Resync: ms(500 * time.Millisecond), Pods: 30, Shapes: []string{"iptables"},
		Rounds: []roundRow{busyRow(nameFloorAdd, 3, 0, 10, 0), busyRow(nameNodebridge, 5, 6, 10, 0), failed}}
	b.Ratios = busyRatios(b.Rounds, idle, specs)
	var out strings.Builder
	w := tabwriter.NewWriter(&out, 0, 0, 2, ' ', 0)
	b.print(w, idle)
	w.Flush()
	for _, want := range []string{
		"3000 Services in every node (iptables), one Service rewritten every 500ms",
		"busy-ipt-30  floor-add   21023       10     0.00      2.00          3.00   1.50x      0.00      -             -       -          -         0",
		"busy-ipt-30  nodebridge  21023       10     0.00      4.00          5.00   1.25x      0.00      5.00          6.00    1.20x      0.00      0",
		"busy-ipt-30  nodebridge      8.00x",
		"1 of the kube-proxy syncs in reference's node in busy-ipt-30 failed, the first: iptables-restore: boom",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, out.String())
		}
	}
}
