package main

import (
	"encoding/json"
	"testing"
	"time"
)

func msList(vals ...int) []time.Duration {
	out := make([]time.Duration, len(vals))
	for i, v := range vals {
		out[i] = time.Duration(v) * time.Millisecond
	}
	return out
}

func TestSummarize(t *testing.T) {
	tests := []struct {
		name                string
		times               []time.Duration
		p50, p90, max, mean ms
	}{
		{"empty", nil, 0, 0, 0, 0},
		{"one", msList(7), ms(7 * time.Millisecond), ms(7 * time.Millisecond), ms(7 * time.Millisecond), ms(7 * time.Millisecond)},
		{"ten unsorted", msList(10, 1, 9, 2, 8, 3, 7, 4, 6, 5),
			ms(5 * time.Millisecond), ms(9 * time.Millisecond), ms(10 * time.Millisecond), ms(5500 * time.Microsecond)},
		{"four", msList(4, 1, 3, 2), ms(2 * time.Millisecond), ms(4 * time.Millisecond), ms(4 * time.Millisecond), ms(2500 * time.Microsecond)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := summarize(tt.times)
			if s.N != len(tt.times) || s.P50 != tt.p50 || s.P90 != tt.p90 || s.Max != tt.max || s.Mean != tt.mean {
				t.Errorf("summarize(%v) = %+v, want n=%d p50=%v p90=%v max=%v mean=%v",
					tt.times, s, len(tt.times), tt.p50, tt.p90, tt.max, tt.mean)
			}
		})
	}
}

func TestSummarizeKeepsInput(t *testing.T) {
	in := msList(3, 1, 2)
	summarize(in)
	if in[0] != 3*time.Millisecond || in[1] != time.Millisecond {
		t.Errorf("summarize sorted its input in place: %v", in)
	}
}

func TestFirstLast(t *testing.T) {
	tests := []struct {
		name        string
		times       []time.Duration
		n           int
		first, last time.Duration
	}{
		{"disjoint", msList(1, 1, 5, 9, 9), 2, time.Millisecond, 9 * time.Millisecond},
		{"n over length", msList(2, 4), 10, 3 * time.Millisecond, 3 * time.Millisecond},
		{"empty", nil, 10, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first, last := firstLast(tt.times, tt.n)
			if first != tt.first || last != tt.last {
				t.Errorf("firstLast(%v, %d) = %v, %v; want %v, %v", tt.times, tt.n, first, last, tt.first, tt.last)
			}
		})
	}
}

func TestMsJSON(t *testing.T) {
	b, err := json.Marshal(ms(4321567 * time.Nanosecond))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "4.322" {
		t.Errorf("ms JSON = %s, want 4.322", b)
	}
}
