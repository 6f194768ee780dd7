package main

import (
	"math"
	"slices"
	"time"
)

// networkResult is one network's cluster and rounds.
type networkResult struct {
	Network     string        `json:"network"` // nodebridge or reference
	Plugin      string        `json:"plugin"`  // the first plugin's type in every node's conflist
	ClusterUpMs float64       `json:"cluster_up_ms"`
	Rounds      []roundResult `json:"rounds"`
	All         latency       `json:"all_rounds"` // every pod of every round
}

// roundResult is one round: each pod's creation → Ready, and the whole.
type roundResult struct {
	Round      int            `json:"round"`
	Latency    latency        `json:"latency"`
	AllReadyMs float64        `json:"all_ready_ms"` // first create request → last pod Ready
	GoneMs     float64        `json:"gone_ms"`      // delete → every Pod object gone
	PerNode    map[string]int `json:"pods_per_node"`
	Pods       []podResult    `json:"pods"`
}

// podResult is one pod's creation → Ready.
type podResult struct {
	Name string  `json:"name"`
	Node string  `json:"node"`
	IP   string  `json:"ip"`
	Ms   float64 `json:"ms"`
}

// latency sums up creation → Ready times.
type latency struct {
	N     int     `json:"n"`
	P50Ms float64 `json:"p50_ms"`
	P90Ms float64 `json:"p90_ms"`
	MaxMs float64 `json:"max_ms"`
}

// fill sets the round's figures from each pod's create stamp (by index)
// and Ready sighting (by name).
func (rr *roundResult) fill(created []time.Time, ready map[string]readyPod, round int) {
	rr.PerNode = map[string]int{}
	var ms []float64
	var last time.Time
	for i, t := range created {
		p := ready[podName(round, i)]
		d := float64(p.at.Sub(t).Microseconds()) / 1000
		rr.Pods = append(rr.Pods, podResult{Name: p.name, Node: p.node, IP: p.ip, Ms: d})
		rr.PerNode[p.node]++
		ms = append(ms, d)
		if p.at.After(last) {
			last = p.at
		}
	}
	rr.Latency = summarize(ms)
	if len(created) > 0 {
		rr.AllReadyMs = float64(last.Sub(created[0]).Microseconds()) / 1000
	}
}

// summarize pools the pods of every round.
func (r *networkResult) summarize() {
	var ms []float64
	for _, rr := range r.Rounds {
		for _, p := range rr.Pods {
			ms = append(ms, p.Ms)
		}
	}
	r.All = summarize(ms)
}

// summarize is the count, p50, p90 and max of ms.
func summarize(ms []float64) latency {
	s := slices.Clone(ms)
	slices.Sort(s)
	l := latency{N: len(s), P50Ms: percentile(s, 50), P90Ms: percentile(s, 90)}
	if len(s) > 0 {
		l.MaxMs = s[len(s)-1]
	}
	return l
}

// percentile is the nearest-rank p-th percentile of sorted: the smallest
// value with at least p% of the values at or below it; 0 when empty.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[max(rank, 1)-1]
}
