package main

import (
	"context"
	"errors"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/nodebridge/nodebridge/internal/lab"
)

func TestAddressPlan(t *testing.T) {
	tests := []struct {
		i        int
		cidr, ip string
	}{
		{1, "10.0.1.0/24", "198.19.0.2"},
		{249, "10.0.249.0/24", "198.19.0.250"},
		{250, "10.0.250.0/24", "198.19.1.1"},
		{256, "10.1.0.0/24", "198.19.1.7"},
		{999, "10.3.231.0/24", "198.19.3.250"},
		{1099, "10.4.75.0/24", "198.19.4.100"},
		{maxPeer, "10.249.255.0/24", "198.19.255.250"},
	}
	for _, tt := range tests {
		if got := podCIDR(tt.i); got.String() != tt.cidr {
			t.Errorf("podCIDR(%d) = %s, want %s", tt.i, got, tt.cidr)
		}
		if got := peerIP(tt.i); got.String() != tt.ip {
			t.Errorf("peerIP(%d) = %s, want %s", tt.i, got, tt.ip)
		}
	}
}

// TestAddressPlanHolds checks, over every index a default run uses and the
// edge of the plan, what the agent relies on: distinct /24s inside the
// cluster CIDR, distinct on-link peer addresses clear of the lab's /24, and
// never a .0 or .255 host.
func TestAddressPlanHolds(t *testing.T) {
	lab24 := netip.MustParsePrefix("198.18.0.0/24")
	cidrs, ips := map[netip.Prefix]int{podCIDR(0): 0}, map[netip.Addr]int{}
	for i := 1; i <= maxPeer; i++ {
		c, ip := podCIDR(i), peerIP(i)
		if j, dup := cidrs[c]; dup {
			t.Fatalf("podCIDR(%d) = podCIDR(%d) = %s", i, j, c)
		}
		if j, dup := ips[ip]; dup {
			t.Fatalf("peerIP(%d) = peerIP(%d) = %s", i, j, ip)
		}
		cidrs[c], ips[ip] = i, i
		if c.Bits() != 24 || !clusterCIDR.Contains(c.Addr()) {
			t.Fatalf("podCIDR(%d) = %s: not a /24 of %s", i, c, clusterCIDR)
		}
		if b := ip.As4(); !underlayWide.Contains(ip) || lab24.Contains(ip) || b[3] == 0 || b[3] == 255 {
			t.Fatalf("peerIP(%d) = %s: want a host of %s outside %s", i, ip, underlayWide, lab24)
		}
	}
}

func TestSpec(t *testing.T) {
	own := spec(0)
	if own.Name != "scale-0000" || own.InternalIPs[0] != lab.NodeIPv4(ownIndex) || own.PodCIDRs[0] != podCIDR(0) {
		t.Errorf("spec(0) = %+v, want scale-0000 at %s with %s", own, lab.NodeIPv4(ownIndex), podCIDR(0))
	}
	if !underlayWide.Contains(own.InternalIPs[0]) {
		t.Errorf("own InternalIP %s outside %s: peers would not be on-link", own.InternalIPs[0], underlayWide)
	}
	p := spec(42)
	if p.Name != "scale-0042" || p.InternalIPs[0] != peerIP(42) || p.PodCIDRs[0] != podCIDR(42) {
		t.Errorf("spec(42) = %+v", p)
	}
}

func TestWantRoutes(t *testing.T) {
	want := wantRoutes(span(3, 5))
	if len(want) != 3 || want[podCIDR(4)] != peerIP(4) {
		t.Errorf("wantRoutes(3..5) = %v", want)
	}
	if s := span(2, 1); len(s) != 0 {
		t.Errorf("span(2, 1) = %v, want empty", s)
	}
}

func TestForEach(t *testing.T) {
	tests := []struct {
		name      string
		jobs      int
		workers   int
		failEvery int // 0: never
		wantErr   bool
	}{
		{"more jobs than workers", 100, 7, 0, false},
		{"more workers than jobs", 3, 32, 0, false},
		{"no jobs", 0, 4, 0, false},
		{"failures reported, the rest still run", 50, 4, 10, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ran atomic.Int64
			seen := make([]atomic.Bool, tt.jobs)
			_, err := forEach(context.Background(), tt.jobs, tt.workers, func(_ context.Context, j int) error {
				ran.Add(1)
				if seen[j].Swap(true) {
					t.Errorf("job %d ran twice", j)
				}
				if tt.failEvery > 0 && j%tt.failEvery == 0 {
					return errors.New("boom")
				}
				return nil
			})
			if got := ran.Load(); got != int64(tt.jobs) {
				t.Errorf("ran %d jobs, want %d", got, tt.jobs)
			}
			if (err != nil) != tt.wantErr {
				t.Errorf("err = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

// With every second peer off-link, those get an address outside the
// node's /15, a route via their VTEP, and an fdb entry and a neighbour.
func TestOffLinkPeers(t *testing.T) {
	offLinkEvery = 2
	defer func() { offLinkEvery = 0 }()
	if ip := peerIP(4); underlayWide.Contains(ip) || ip.String() != "100.64.0.5" {
		t.Errorf("off-link peer 4: %s", ip)
	}
	if ip := peerIP(3); !underlayWide.Contains(ip) {
		t.Errorf("on-link peer 3: %s outside %s", ip, underlayWide)
	}
	want := wantRoutes([]int{3, 4})
	if want[podCIDR(3)] != peerIP(3) || want[podCIDR(4)] != podCIDR(4).Addr() {
		t.Errorf("routes: %v", want)
	}
	tun := wantTunnel([]int{3, 4})
	if len(tun.fdb) != 1 || tun.fdb["0e:6e:64:40:00:05"] != peerIP(4) || tun.neigh[podCIDR(4).Addr()] != "0e:6e:64:40:00:05" {
		t.Errorf("tunnel: %+v", tun)
	}
}
