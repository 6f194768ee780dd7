package ipam

import (
	"net/netip"
	"slices"
	"testing"
)

func TestWalk(t *testing.T) {
	set := mustPool(t, Config{Ranges: [][]RangeConfig{{
		{Subnet: "10.0.0.0/29", RangeStart: "10.0.0.2", RangeEnd: "10.0.0.4"},
		{Subnet: "10.0.1.0/29", RangeStart: "10.0.1.5", RangeEnd: "10.0.1.6"},
	}}}).Sets[0]
	tests := []struct {
		last string
		want []string
	}{
		{"", []string{"10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.1.5", "10.0.1.6"}},
		{"10.0.0.3", []string{"10.0.0.4", "10.0.1.5", "10.0.1.6", "10.0.0.2", "10.0.0.3"}},
		{"10.0.0.4", []string{"10.0.1.5", "10.0.1.6", "10.0.0.2", "10.0.0.3", "10.0.0.4"}},
		{"10.0.1.6", []string{"10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.1.5", "10.0.1.6"}},
		{"10.0.1.5", []string{"10.0.1.6", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.1.5"}},
		{"10.0.0.1", []string{"10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.1.5", "10.0.1.6"}}, // in subnet, not span
		{"fd00::3", []string{"10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.1.5", "10.0.1.6"}},
	}
	for _, tt := range tests {
		t.Run(tt.last, func(t *testing.T) {
			var last netip.Addr
			if tt.last != "" {
				last = netip.MustParseAddr(tt.last)
			}
			if got := slices.Collect(set.walk(last)); !slices.Equal(got, addrs(tt.want...)) {
				t.Errorf("walk(%s) = %v, want %v", tt.last, got, tt.want)
			}
		})
	}
	t.Run("stops early", func(t *testing.T) {
		var got []netip.Addr
		for a := range set.walk(netip.Addr{}) {
			got = append(got, a)
			if len(got) == 4 {
				break
			}
		}
		if !slices.Equal(got, addrs("10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.1.5")) {
			t.Errorf("walk with break = %v", got)
		}
	})
}
