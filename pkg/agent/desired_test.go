package agent

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// underlays of the own node "a": 198.18.0.11/24 and fd00:198:18::11/64 on link 7.
func testUnderlays(t *testing.T) [2]*underlay {
	return [2]*underlay{
		{addr: netip.MustParseAddr("198.18.0.11"), linkIndex: 7, linkName: "eth0", mtu: 1500, connected: pfx(t, "198.18.0.0/24")},
		{addr: netip.MustParseAddr("fd00:198:18::11"), linkIndex: 7, linkName: "eth0", mtu: 1500, connected: pfx(t, "fd00:198:18::/64")},
	}
}

// routeList renders the desired routes as "dst via gw dev index", sorted.
func routeList(d desired) []string {
	var out []string
	for w := range maps.Values(d.routes) {
		out = append(out, fmt.Sprintf("%s via %s dev %d", w.dst, w.gw, w.linkIndex))
	}
	slices.Sort(out)
	return out
}

func TestComputeDesired(t *testing.T) {
	own := node("a", []string{"10.244.0.0/24", "fd00:10:244::/64"}, "198.18.0.11", "fd00:198:18::11")
	for _, tc := range []struct {
		name        string
		nodes       []*corev1.Node
		configured  []string
		noV6        bool // own node without an IPv6 underlay
		wantRoutes  []string
		wantCluster []string
		wantSkipped []string
		wantPeers   int
	}{
		{name: "dual-stack peers",
			nodes: []*corev1.Node{own,
				node("b", []string{"10.244.1.0/24", "fd00:10:244:1::/64"}, "198.18.0.12", "fd00:198:18::12"),
				node("c", []string{"10.244.2.0/24", "fd00:10:244:2::/64"}, "198.18.0.13", "fd00:198:18::13")},
			wantRoutes: []string{"10.244.1.0/24 via 198.18.0.12 dev 7", "10.244.2.0/24 via 198.18.0.13 dev 7",
				"fd00:10:244:1::/64 via fd00:198:18::12 dev 7", "fd00:10:244:2::/64 via fd00:198:18::13 dev 7"},
			wantCluster: []string{"10.244.0.0/22", "fd00:10:244::/62"}, wantPeers: 2},
		{name: "peer without an IPv6 InternalIP",
			nodes:       []*corev1.Node{own, node("b", []string{"10.244.1.0/24", "fd00:10:244:1::/64"}, "198.18.0.12")},
			wantRoutes:  []string{"10.244.1.0/24 via 198.18.0.12 dev 7"},
			wantCluster: []string{"10.244.0.0/23", "fd00:10:244::/63"},
			wantSkipped: []string{"b fd00:10:244:1::/64: no IPv6 InternalIP"}, wantPeers: 1},
		{name: "own node without an IPv6 underlay", noV6: true,
			nodes:       []*corev1.Node{own, node("b", []string{"fd00:10:244:1::/64"}, "fd00:198:18::12")},
			wantCluster: []string{"10.244.0.0/24", "fd00:10:244::/63"},
			wantSkipped: []string{"b fd00:10:244:1::/64: no IPv6 underlay on this node"}, wantPeers: 1},
		{name: "peer not on-link",
			nodes:       []*corev1.Node{own, node("b", []string{"10.244.1.0/24"}, "192.0.2.12")},
			wantCluster: []string{"10.244.0.0/23", "fd00:10:244::/64"},
			wantSkipped: []string{"b 10.244.1.0/24: InternalIP 192.0.2.12 not on-link on eth0"}, wantPeers: 1},
		{name: "peer holding the own address is not on-link",
			nodes:       []*corev1.Node{own, node("b", []string{"10.244.1.0/24"}, "198.18.0.11")},
			wantCluster: []string{"10.244.0.0/23", "fd00:10:244::/64"},
			wantSkipped: []string{"b 10.244.1.0/24: InternalIP 198.18.0.11 not on-link on eth0"}, wantPeers: 1},
		{name: "peers without podCIDRs are no peers",
			nodes:       []*corev1.Node{own, node("b", nil, "198.18.0.12")},
			wantCluster: []string{"10.244.0.0/24", "fd00:10:244::/64"}},
		{name: "podCIDR claimed twice goes to the first Node by name",
			nodes:       []*corev1.Node{own, node("c", []string{"10.244.1.0/24"}, "198.18.0.13"), node("b", []string{"10.244.1.0/24"}, "198.18.0.12")},
			wantRoutes:  []string{"10.244.1.0/24 via 198.18.0.12 dev 7"},
			wantCluster: []string{"10.244.0.0/23", "fd00:10:244::/64"},
			wantSkipped: []string{"c 10.244.1.0/24: podCIDR also held by b"}, wantPeers: 2},
		{name: "peer overlapping the own podCIDR",
			nodes:       []*corev1.Node{own, node("b", []string{"10.244.0.0/16"}, "198.18.0.12")},
			wantCluster: []string{"10.244.0.0/16", "fd00:10:244::/64"},
			wantSkipped: []string{"b 10.244.0.0/16: overlaps the own podCIDR"}, wantPeers: 1},
		{name: "configured IPv4 cluster CIDR, IPv6 still covering", configured: []string{"10.0.0.0/8"},
			nodes:       []*corev1.Node{own, node("b", []string{"10.244.9.0/24"}, "198.18.0.12")},
			wantRoutes:  []string{"10.244.9.0/24 via 198.18.0.12 dev 7"},
			wantCluster: []string{"10.0.0.0/8", "fd00:10:244::/64"}, wantPeers: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ul := testUnderlays(t)
			if tc.noV6 {
				ul[v6] = nil
			}
			d, err := computeDesired(input{own: "a", nodes: tc.nodes, clusterCIDRs: pfx(t, tc.configured...), underlays: ul})
			if err != nil {
				t.Fatal(err)
			}
			if got := routeList(d); !slices.Equal(got, tc.wantRoutes) {
				t.Errorf("routes:\n got %q\nwant %q", got, tc.wantRoutes)
			}
			if got := d.clusterCIDRs; !slices.Equal(got, pfx(t, tc.wantCluster...)) {
				t.Errorf("cluster CIDRs: got %v, want %v", got, tc.wantCluster)
			}
			var skipped []string
			for _, s := range d.skipped {
				skipped = append(skipped, s.String())
			}
			if !slices.Equal(skipped, tc.wantSkipped) {
				t.Errorf("skipped:\n got %q\nwant %q", skipped, tc.wantSkipped)
			}
			if d.peers != tc.wantPeers {
				t.Errorf("peers: got %d, want %d", d.peers, tc.wantPeers)
			}
			if !slices.Equal(d.podCIDRs, pfx(t, "10.244.0.0/24", "fd00:10:244::/64")) {
				t.Errorf("own podCIDRs: got %v", d.podCIDRs)
			}
		})
	}
}

func TestComputeDesiredWaits(t *testing.T) {
	ul := testUnderlays(t)
	for _, tc := range []struct {
		name  string
		nodes []*corev1.Node
		want  error
	}{
		{"own Node missing", []*corev1.Node{node("b", []string{"10.244.1.0/24"}, "198.18.0.12")}, errNoOwnNode},
		{"own podCIDR not assigned", []*corev1.Node{node("a", nil, "198.18.0.11")}, errNoPodCIDR},
		{"own podCIDR unparsable", []*corev1.Node{node("a", []string{"10.244.0.0/33"}, "198.18.0.11")}, errNoPodCIDR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := computeDesired(input{own: "a", nodes: tc.nodes, underlays: ul}); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// A peer's podCIDR or InternalIP change moves its route; a deleted Node's route goes.
func TestComputeDesiredFollowsChanges(t *testing.T) {
	own := node("a", []string{"10.244.0.0/24"}, "198.18.0.11")
	ul := testUnderlays(t)
	steps := []struct {
		name  string
		nodes []*corev1.Node
		want  []string
	}{
		{"b and c", []*corev1.Node{own, node("b", []string{"10.244.1.0/24"}, "198.18.0.12"), node("c", []string{"10.244.2.0/24"}, "198.18.0.13")},
			[]string{"10.244.1.0/24 via 198.18.0.12 dev 7", "10.244.2.0/24 via 198.18.0.13 dev 7"}},
		{"b's podCIDR changed", []*corev1.Node{own, node("b", []string{"10.244.5.0/24"}, "198.18.0.12"), node("c", []string{"10.244.2.0/24"}, "198.18.0.13")},
			[]string{"10.244.2.0/24 via 198.18.0.13 dev 7", "10.244.5.0/24 via 198.18.0.12 dev 7"}},
		{"c's InternalIP changed", []*corev1.Node{own, node("b", []string{"10.244.5.0/24"}, "198.18.0.12"), node("c", []string{"10.244.2.0/24"}, "198.18.0.33")},
			[]string{"10.244.2.0/24 via 198.18.0.33 dev 7", "10.244.5.0/24 via 198.18.0.12 dev 7"}},
		{"b deleted", []*corev1.Node{own, node("c", []string{"10.244.2.0/24"}, "198.18.0.33")},
			[]string{"10.244.2.0/24 via 198.18.0.33 dev 7"}},
	}
	for _, s := range steps {
		d, err := computeDesired(input{own: "a", nodes: s.nodes, underlays: ul})
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := routeList(d); !slices.Equal(got, s.want) {
			t.Errorf("%s: got %q, want %q", s.name, got, s.want)
		}
	}
}

func TestCoveringPrefix(t *testing.T) {
	for _, tc := range []struct{ a, b, want string }{
		{"10.244.0.0/24", "10.244.0.0/24", "10.244.0.0/24"},
		{"10.244.0.0/24", "10.244.1.0/24", "10.244.0.0/23"},
		{"10.244.3.0/24", "10.244.4.0/24", "10.244.0.0/21"},
		{"10.244.0.0/24", "10.0.0.0/8", "10.0.0.0/8"},
		{"10.0.0.0/24", "192.168.0.0/24", "0.0.0.0/0"},
		{"fd00:10:244::/64", "fd00:10:244:ff::/64", "fd00:10:244::/56"},
	} {
		got := coveringPrefix(netip.MustParsePrefix(tc.a), netip.MustParsePrefix(tc.b))
		if got.String() != tc.want {
			t.Errorf("coveringPrefix(%s, %s) = %s, want %s", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestReadNodeLegacyPodCIDR(t *testing.T) {
	n := node("a", nil, "198.18.0.11", "198.18.0.99", "fd00::1")
	n.Spec.PodCIDR = "10.244.7.0/24"
	n.Status.Addresses = append([]corev1.NodeAddress{{Type: corev1.NodeExternalIP, Address: "203.0.113.1"}}, n.Status.Addresses...)
	ni := readNode(n)
	if !slices.Equal(ni.podCIDRs, pfx(t, "10.244.7.0/24")) {
		t.Errorf("podCIDRs: got %v", ni.podCIDRs)
	}
	if ni.ips[v4].String() != "198.18.0.11" || ni.ips[v6].String() != "fd00::1" {
		t.Errorf("InternalIPs: got %v (want the first of each family, never the ExternalIP)", ni.ips)
	}
}
