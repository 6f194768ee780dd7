package main

import (
	"net/netip"
	"testing"
)

func TestSameRoutes(t *testing.T) {
	want := wantRoutes([]int{1, 2})
	wrongGW := routeSet{podCIDR(1): peerIP(1), podCIDR(2): peerIP(3)}
	extra := routeSet{podCIDR(1): peerIP(1), podCIDR(2): peerIP(2), netip.MustParsePrefix("10.9.9.0/24"): peerIP(9)}
	tests := []struct {
		name string
		have routeSet
		want bool
	}{
		{"exact", wantRoutes([]int{2, 1}), true},
		{"one missing", wantRoutes([]int{1}), false},
		{"a wrong gateway", wrongGW, false},
		{"a stale extra route", extra, false},
		{"none", routeSet{}, false},
	}
	for _, tt := range tests {
		if got := sameRoutes(tt.have, want); got != tt.want {
			t.Errorf("%s: sameRoutes = %v, want %v", tt.name, got, tt.want)
		}
	}
}
