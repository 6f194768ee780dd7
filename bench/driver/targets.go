package main

import (
	"fmt"
	"strings"
)

// target is one goal of the issue and whether this run met it.
type target struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Want   string  `json:"want"` // e.g. ">= 5"
	Met    bool    `json:"met"`
	Detail string  `json:"detail,omitempty"`
}

// Limits the issue sets.
const (
	wantSpeedup   = 5.0 // reference / nodebridge, ADD and DEL p50, parallel throughput
	wantFloorAdd  = 1.3 // nodebridge ADD p50 / minimal netlink ADD p50
	wantDrift     = 1.1 // mean of the last 10 ADDs / the first 10, at the largest round
	wantIPAMScale = 1.5 // nodebridge IPAM per-op p50 at 10,000 allocations / at 10 (pkg/ipam issue)
)

func atLeast(name string, v, limit float64, clean bool) target {
	return target{Name: name, Value: v, Want: fmt.Sprintf(">= %g", limit), Met: clean && v >= limit}
}

func atMost(name string, v, limit float64, clean bool) target {
	return target{Name: name, Value: v, Want: fmt.Sprintf("<= %g", limit), Met: clean && v > 0 && v <= limit}
}

// evaluate checks every target against the rows, for each nodebridge row
// (per round the rows side by side, then drift, then rule counts). A figure
// from a round with failed calls never meets its target.
func evaluate(rows []roundRow, rounds []roundSpec, scale []scaleRow) []target {
	var out []target
	largest := roundSpec{}
	for _, s := range rounds {
		if s.Workers == 1 && s.Pods > largest.Pods {
			largest = s
		}
		for _, name := range nodebridgeNames() {
			out = append(out, roundTargets(rows, s, name)...)
		}
	}
	for _, name := range nodebridgeNames() {
		if nb := find(rows, largest.Name, name); nb != nil {
			out = append(out, atMost(fmt.Sprintf("%s: %s mean of last 10 ADDs / first 10", largest.Name, name),
				ratio(nb.Last10, nb.First10), wantDrift, nb.Failures == 0))
		}
	}
	for _, name := range nodebridgeNames() {
		if t, ok := rulesConstant(rows, name); ok {
			out = append(out, t)
		}
	}
	return append(out, ipamTargets(scale)...)
}

// roundTargets compares nodebridge row name with the reference, and with
// floor-add when the round has it, in round s.
func roundTargets(rows []roundRow, s roundSpec, name string) []target {
	nb, ref, fl := find(rows, s.Name, name), find(rows, s.Name, nameReference), find(rows, s.Name, nameFloorAdd)
	if nb == nil || ref == nil || nb.Del == nil || ref.Del == nil {
		return nil
	}
	clean := nb.Failures == 0 && ref.Failures == 0
	if s.Workers > 1 {
		t := atLeast(fmt.Sprintf("parallel %s: ops/s %s / reference, no failures", s.Name, name), nb.OpsPerSec/ref.OpsPerSec, wantSpeedup, clean)
		t.Detail = fmt.Sprintf("%d workers; failures: %s %d, reference %d", s.Workers, name, nb.Failures, ref.Failures)
		return []target{t}
	}
	out := []target{
		atLeast(fmt.Sprintf("%s: ADD p50 reference / %s", s.Name, name), ratio(ref.Add.P50, nb.Add.P50), wantSpeedup, clean),
		atLeast(fmt.Sprintf("%s: DEL p50 reference / %s", s.Name, name), ratio(ref.Del.P50, nb.Del.P50), wantSpeedup, clean),
	}
	if fl != nil {
		out = append(out, atMost(fmt.Sprintf("%s: ADD p50 %s / floor-add", s.Name, name), ratio(nb.Add.P50, fl.Add.P50), wantFloorAdd,
			clean && fl.Failures == 0))
	}
	return out
}

// rulesConstant checks that the rule count after the ADDs of nodebridge row
// name is the same in every round, whatever the number of pods: rules per
// network, not per pod. With ipMasq on, no rules at all means the count
// looked in the wrong place, so 0 fails too. It reports false when name has
// no rows.
func rulesConstant(rows []roundRow, name string) (target, bool) {
	var counts []string
	first, same := -1, true
	for _, r := range rows {
		if r.Plugin != name {
			continue
		}
		counts = append(counts, fmt.Sprintf("%s: %d", r.Round, r.Rules.AfterAdd))
		if first < 0 {
			first = r.Rules.AfterAdd
		}
		same = same && r.Rules.AfterAdd == first
	}
	if first < 0 {
		return target{}, false
	}
	return target{Name: name + " rules after ADDs constant over rounds", Value: float64(first), Want: "same in every round, above 0",
		Met: same && first > 0, Detail: strings.Join(counts, ", ")}, true
}

// ipamTargets checks that nodebridge's IPAM cost does not grow with the
// number of allocations: p50 at the largest fill over p50 at the smallest.
func ipamTargets(scale []scaleRow) []target {
	if len(scale) < 2 {
		return nil
	}
	lo, hi := scale[0], scale[len(scale)-1]
	name := func(op string) string {
		return fmt.Sprintf("nodebridge IPAM %s p50 at %d / at %d allocations", op, hi.Fill, lo.Fill)
	}
	return []target{
		atMost(name("ADD"), ratio(hi.Nodebridge.Add.P50, lo.Nodebridge.Add.P50), wantIPAMScale, true),
		atMost(name("DEL"), ratio(hi.Nodebridge.Del.P50, lo.Nodebridge.Del.P50), wantIPAMScale, true),
	}
}
