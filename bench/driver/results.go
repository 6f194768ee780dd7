package main

import (
	"fmt"
	"math"
)

// Names of the programs in rows, ratios and targets.
const (
	nameNodebridge    = "nodebridge"     // the config as given: no ipMasqBackend
	nameNodebridgeNFT = "nodebridge-nft" // the same with ipMasqBackend nftables
	nameReference     = "reference"
	nameFloorAdd      = "floor-add"
)

// nodebridgeNames are the rows of nodebridge, each compared with the
// reference on its own.
func nodebridgeNames() []string { return []string{nameNodebridge, nameNodebridgeNFT} }

// roundRow is the figures of one plugin in one round, as printed and as
// written to the JSON file.
type roundRow struct {
	Plugin     string         `json:"plugin"`
	Round      string         `json:"round"`
	Pods       int            `json:"pods"`
	Workers    int            `json:"workers"`
	Add        summary        `json:"add"`
	Del        *summary       `json:"del,omitempty"` // nil for a plugin without DEL
	AddWall    ms             `json:"add_wall_ms"`
	DelWall    ms             `json:"del_wall_ms"`
	Total      ms             `json:"total_ms"`            // ADDs and DELs: wall time, or their calls' sum when interleaved
	First10    ms             `json:"first10_add_mean_ms"` // mean of the first 10 ADDs, in pod order
	Last10     ms             `json:"last10_add_mean_ms"`
	OpsPerSec  float64        `json:"ops_per_s"` // ADDs and DELs per second of Total
	Rules      ruleCounts     `json:"rules"`
	Veths      *vethsAfterDel `json:"veths_after_del,omitempty"` // nil for a plugin without DEL
	Failures   int            `json:"failures"`
	FirstError string         `json:"first_error,omitempty"`
	Load       *loadRun       `json:"kube_proxy_load,omitempty"` // nil in an idle round
}

func rowOf(r roundResult) roundRow {
	row := roundRow{
		Plugin: r.Plugin, Round: r.Spec.Name, Pods: r.Spec.Pods, Workers: r.Spec.Workers,
		Add: summarize(r.Add.Times), AddWall: ms(r.Add.Wall), DelWall: ms(r.Del.Wall),
		Rules: r.Rules, Veths: r.Veths, Failures: r.Add.Failures + r.Del.Failures, Load: r.Load,
	}
	ops := len(r.Add.Times)
	if len(r.Del.Times) > 0 {
		del := summarize(r.Del.Times)
		row.Del = &del
		ops += len(r.Del.Times)
	}
	total := r.Add.Wall + r.Del.Wall
	row.Total = ms(total)
	if total > 0 {
		row.OpsPerSec = math.Round(10*float64(ops)/total.Seconds()) / 10
	}
	first, last := firstLast(r.Add.Times, 10)
	row.First10, row.Last10 = ms(first), ms(last)
	if err := firstErr(r.Add.FirstErr, r.Del.FirstErr); err != nil {
		row.FirstError = err.Error()
	}
	return row
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// find returns the row of plugin in round, or nil.
func find(rows []roundRow, round, plugin string) *roundRow {
	for i := range rows {
		if rows[i].Round == round && rows[i].Plugin == plugin {
			return &rows[i]
		}
	}
	return nil
}

// ratioRow compares one nodebridge row with the reference in one round.
// Reference over nodebridge: above 1 means nodebridge is faster.
type ratioRow struct {
	Round      string  `json:"round"`
	Plugin     string  `json:"plugin"` // the nodebridge row: nodebridge or nodebridge-nft
	AddP50     float64 `json:"add_p50_reference_over_nodebridge"`
	DelP50     float64 `json:"del_p50_reference_over_nodebridge"`
	Total      float64 `json:"total_reference_over_nodebridge"`
	Throughput float64 `json:"ops_per_s_nodebridge_over_reference"`
	FloorAdd   float64 `json:"add_p50_nodebridge_over_floor_add,omitempty"` // 0: no floor-add in the round
}

// ratios compares each nodebridge row with the reference in every round
// that has both.
func ratios(rows []roundRow, rounds []roundSpec) []ratioRow {
	var out []ratioRow
	for _, s := range rounds {
		ref := find(rows, s.Name, nameReference)
		for _, name := range nodebridgeNames() {
			nb := find(rows, s.Name, name)
			if nb == nil || ref == nil || nb.Del == nil || ref.Del == nil {
				continue
			}
			r := ratioRow{Round: s.Name, Plugin: name, AddP50: ratio(ref.Add.P50, nb.Add.P50), DelP50: ratio(ref.Del.P50, nb.Del.P50),
				Total: ratio(ref.Total, nb.Total)}
			if ref.OpsPerSec > 0 {
				r.Throughput = nb.OpsPerSec / ref.OpsPerSec
			}
			if fl := find(rows, s.Name, nameFloorAdd); fl != nil {
				r.FloorAdd = ratio(nb.Add.P50, fl.Add.P50)
			}
			out = append(out, r)
		}
	}
	return out
}

// roundName names a round by its shape: "seq-300", "par-100".
func roundName(pods, workers int) string {
	if workers == 1 {
		return fmt.Sprintf("seq-%d", pods)
	}
	return fmt.Sprintf("par-%d", pods)
}
