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

// evaluate checks every target against the rows. A figure from a round with
// failed calls never meets its target.
func evaluate(rows []roundRow, rounds []roundSpec, scale []scaleRow) []target {
	var out []target
	largest := roundSpec{}
	for _, s := range rounds {
		nb, ref, fl := find(rows, s.Name, nameNodebridge), find(rows, s.Name, nameReference), find(rows, s.Name, nameFloorAdd)
		if nb == nil || ref == nil || nb.Del == nil || ref.Del == nil {
			continue
		}
		clean := nb.Failures == 0 && ref.Failures == 0
		if s.Workers > 1 {
			t := atLeast("parallel "+s.Name+": ops/s nodebridge / reference, no failures", nb.OpsPerSec/ref.OpsPerSec, wantSpeedup, clean)
			t.Detail = fmt.Sprintf("%d workers; failures: nodebridge %d, reference %d", s.Workers, nb.Failures, ref.Failures)
			out = append(out, t)
			continue
		}
		if s.Pods > largest.Pods {
			largest = s
		}
		out = append(out,
			atLeast(s.Name+": ADD p50 reference / nodebridge", ratio(ref.Add.P50, nb.Add.P50), wantSpeedup, clean),
			atLeast(s.Name+": DEL p50 reference / nodebridge", ratio(ref.Del.P50, nb.Del.P50), wantSpeedup, clean))
		if fl != nil {
			out = append(out, atMost(s.Name+": ADD p50 nodebridge / floor-add", ratio(nb.Add.P50, fl.Add.P50), wantFloorAdd,
				clean && fl.Failures == 0))
		}
	}
	if nb := find(rows, largest.Name, nameNodebridge); nb != nil {
		out = append(out, atMost(largest.Name+": nodebridge mean of last 10 ADDs / first 10", ratio(nb.Last10, nb.First10),
			wantDrift, nb.Failures == 0))
	}
	out = append(out, rulesConstant(rows))
	return append(out, ipamTargets(scale)...)
}

// rulesConstant checks that nodebridge's rule count after the ADDs is the
// same in every round, whatever the number of pods: rules per network, not
// per pod.
func rulesConstant(rows []roundRow) target {
	var counts []string
	first, same := -1, true
	for _, r := range rows {
		if r.Plugin != nameNodebridge {
			continue
		}
		counts = append(counts, fmt.Sprintf("%s: %d", r.Round, r.Rules.AfterAdd))
		if first < 0 {
			first = r.Rules.AfterAdd
		}
		same = same && r.Rules.AfterAdd == first
	}
	return target{Name: "nodebridge rules after ADDs constant over rounds", Value: float64(first), Want: "same in every round",
		Met: same && first >= 0, Detail: strings.Join(counts, ", ")}
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
