package main

import (
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/nodebridge/nodebridge/pkg/routes"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
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

func TestPodRoutes(t *testing.T) {
	route := func(dst, gw string, proto netlink.RouteProtocol) netlink.Route {
		r := netlink.Route{Protocol: proto}
		if dst != "" {
			_, r.Dst, _ = net.ParseCIDR(dst)
		}
		if gw != "" {
			r.Gw = net.ParseIP(gw)
		}
		return r
	}
	rs := []netlink.Route{
		route("10.0.1.0/24", "198.19.0.2", routes.Protocol),  // the agent's
		route("10.0.2.0/24", "198.19.0.3", unix.RTPROT_BOOT), // flannel's
		route("10.0.0.0/24", "", unix.RTPROT_KERNEL),         // own bridge: no gateway
		route("192.168.5.0/24", "198.18.0.1", unix.RTPROT_BOOT),
		route("0.0.0.0/8", "198.18.0.1", unix.RTPROT_BOOT), // holds 10/8, not inside it
		route("", "198.18.0.1", unix.RTPROT_BOOT),          // default
	}
	tests := []struct {
		name          string
		inClusterOnly bool
		want          routeSet
	}{
		{"in the cluster CIDR, any protocol", true, wantRoutes([]int{1, 2})},
		{"every gatewayed route", false, routeSet{podCIDR(1): peerIP(1), podCIDR(2): peerIP(2),
			netip.MustParsePrefix("192.168.5.0/24"): netip.MustParseAddr("198.18.0.1"),
			netip.MustParsePrefix("0.0.0.0/8"):      netip.MustParseAddr("198.18.0.1")}},
	}
	for _, tt := range tests {
		if got := podRoutes(rs, tt.inClusterOnly); !sameRoutes(got, tt.want) {
			t.Errorf("%s: podRoutes = %v, want %v", tt.name, got, tt.want)
		}
	}
	if got, want := routeProtocols(rs), []string{"78", "boot"}; !slices.Equal(got, want) {
		t.Errorf("routeProtocols = %q, want %q", got, want)
	}
}

func TestInside(t *testing.T) {
	tests := []struct {
		p    string
		want bool
	}{
		{"10.4.75.0/24", true},
		{"10.0.0.0/8", true},
		{"10.0.0.0/7", false},
		{"11.0.0.0/24", false},
	}
	for _, tt := range tests {
		if got := inside(netip.MustParsePrefix(tt.p), clusterCIDR); got != tt.want {
			t.Errorf("inside(%s, %s) = %v, want %v", tt.p, clusterCIDR, got, tt.want)
		}
	}
}
