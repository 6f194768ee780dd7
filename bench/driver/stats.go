package main

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"
)

// ms is a duration that prints, and encodes to JSON, as milliseconds.
type ms time.Duration

func (d ms) String() string { return strconv.FormatFloat(d.float(), 'f', 2, 64) }

func (d ms) float() float64 { return float64(d) / float64(time.Millisecond) }

// MarshalJSON writes milliseconds with microsecond precision.
func (d ms) MarshalJSON() ([]byte, error) {
	return json.Marshal(math.Round(d.float()*1000) / 1000)
}

// summary describes a sample of call times.
type summary struct {
	N    int `json:"n"`
	P50  ms  `json:"p50_ms"`
	P90  ms  `json:"p90_ms"`
	Max  ms  `json:"max_ms"`
	Mean ms  `json:"mean_ms"`
}

func summarize(times []time.Duration) summary {
	if len(times) == 0 {
		return summary{}
	}
	s := slices.Clone(times)
	slices.Sort(s)
	return summary{N: len(s), P50: ms(percentile(s, 50)), P90: ms(percentile(s, 90)), Max: ms(s[len(s)-1]), Mean: ms(mean(s))}
}

// percentile is the nearest-rank p-th percentile of sorted, which is not empty.
func percentile(sorted []time.Duration, p int) time.Duration {
	rank := (p*len(sorted) + 99) / 100 // ceil(p/100 * n)
	return sorted[max(rank, 1)-1]
}

func mean(times []time.Duration) time.Duration {
	if len(times) == 0 {
		return 0
	}
	var sum time.Duration
	for _, t := range times {
		sum += t
	}
	return sum / time.Duration(len(times))
}

// firstLast is the mean of the first and of the last n times.
func firstLast(times []time.Duration, n int) (first, last time.Duration) {
	n = min(n, len(times))
	return mean(times[:n]), mean(times[len(times)-n:])
}

// ratio is a/b, or 0 when b is zero (nothing measured).
func ratio(a, b ms) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
