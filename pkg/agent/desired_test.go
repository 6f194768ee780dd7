package agent

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nodebridge/nodebridge/pkg/routes"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// underlays of the own node "a": 198.18.0.11/24 and fd00:198:18::11/64 on link 7.
func testUnderlays(t *testing.T) [2]*routes.Underlay {
	return [2]*routes.Underlay{
		{Addr: netip.MustParseAddr("198.18.0.11"), LinkIndex: 7, LinkName: "eth0", MTU: 1500, Connected: pfx(t, "198.18.0.0/24")},
		{Addr: netip.MustParseAddr("fd00:198:18::11"), LinkIndex: 7, LinkName: "eth0", MTU: 1500, Connected: pfx(t, "fd00:198:18::/64")},
	}
}

// testHostState is node "a"'s addressing: the underlay eth0 and the bridge
// cni0 holding the gateway of the own podCIDRs.
func testHostState() routes.Host {
	return routes.Host{Addrs: []routes.Addr{
		{Prefix: netip.MustParsePrefix("198.18.0.11/24"), LinkIndex: 7, LinkName: "eth0"},
		{Prefix: netip.MustParsePrefix("fd00:198:18::11/64"), LinkIndex: 7, LinkName: "eth0"},
		{Prefix: netip.MustParsePrefix("10.244.0.1/24"), LinkIndex: 9, LinkName: "cni0"},
		{Prefix: netip.MustParsePrefix("fd00:10:244::1/64"), LinkIndex: 9, LinkName: "cni0"},
	}}
}

// testCluster is the cluster CIDRs of the tests unless a case says otherwise.
func testCluster(t *testing.T) []netip.Prefix { return pfx(t, "10.244.0.0/16", "fd00:10:244::/56") }

// routeList renders the desired routes as "dst via gw dev index", sorted.
func routeList(d desired) []string {
	var out []string
	for w := range maps.Values(d.routes) {
		r := fmt.Sprintf("%s via %s dev %d", w.Dst, w.Gw, w.LinkIndex)
		if w.Onlink {
			r = fmt.Sprintf("%s via %s dev %s onlink", w.Dst, w.Gw, w.LinkName)
		}
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

// tunnelPeers renders the peers of family f's tunnel as "node vtep mac remote".
func tunnelPeers(d desired, f int) []string {
	if d.tunnels[f] == nil {
		return nil
	}
	var out []string
	for _, p := range d.tunnels[f].peers {
		out = append(out, fmt.Sprintf("%s %s %s %s", p.Node, p.VTEP, p.MAC, p.Remote))
	}
	return out
}

// skipList renders the skips as their String.
func skipList(d desired) []string {
	var out []string
	for _, s := range d.skipped {
		out = append(out, s.String())
	}
	return out
}

func TestComputeDesired(t *testing.T) {
	own := node("a", []string{"10.244.0.0/24", "fd00:10:244::/64"}, "198.18.0.11", "fd00:198:18::11")
	for _, tc := range []struct {
		name        string
		nodes       []*corev1.Node
		noV6        bool // own node without an IPv6 underlay
		wantRoutes  []string
		wantSkipped []string
		wantPeers   int
	}{
		{name: "dual-stack peers",
			nodes: []*corev1.Node{own,
				node("b", []string{"10.244.1.0/24", "fd00:10:244:1::/64"}, "198.18.0.12", "fd00:198:18::12"),
				node("c", []string{"10.244.2.0/24", "fd00:10:244:2::/64"}, "198.18.0.13", "fd00:198:18::13")},
			wantRoutes: []string{"10.244.1.0/24 via 198.18.0.12 dev 7", "10.244.2.0/24 via 198.18.0.13 dev 7",
				"fd00:10:244:1::/64 via fd00:198:18::12 dev 7", "fd00:10:244:2::/64 via fd00:198:18::13 dev 7"},
			wantPeers: 2},
		{name: "peer without an IPv6 InternalIP",
			nodes:       []*corev1.Node{own, node("b", []string{"10.244.1.0/24", "fd00:10:244:1::/64"}, "198.18.0.12")},
			wantRoutes:  []string{"10.244.1.0/24 via 198.18.0.12 dev 7"},
			wantSkipped: []string{"b fd00:10:244:1::/64: no-internal-ip: no IPv6 InternalIP"}, wantPeers: 1},
		{name: "own node without an IPv6 underlay", noV6: true,
			nodes:       []*corev1.Node{own, node("b", []string{"fd00:10:244:1::/64"}, "fd00:198:18::12")},
			wantSkipped: []string{"b fd00:10:244:1::/64: no-underlay: no IPv6 underlay on this node"}, wantPeers: 1},
		{name: "peers without podCIDRs are no peers",
			nodes: []*corev1.Node{own, node("b", nil, "198.18.0.12")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ul := testUnderlays(t)
			if tc.noV6 {
				ul[v6] = nil
			}
			d, err := computeDesired(input{own: "a", nodes: tc.nodes, clusterCIDRs: testCluster(t), underlays: ul, host: testHostState()})
			if err != nil {
				t.Fatal(err)
			}
			if got := routeList(d); !slices.Equal(got, tc.wantRoutes) {
				t.Errorf("routes:\n got %q\nwant %q", got, tc.wantRoutes)
			}
			if got := d.clusterCIDRs; !slices.Equal(got, testCluster(t)) {
				t.Errorf("cluster CIDRs: got %v, want the configured ones", got)
			}
			if got := skipList(d); !slices.Equal(got, tc.wantSkipped) {
				t.Errorf("skipped:\n got %q\nwant %q", got, tc.wantSkipped)
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

// created sets a Node's creationTimestamp to the given second of a fixed day.
func created(n *corev1.Node, sec int) *corev1.Node {
	n.CreationTimestamp = metav1.NewTime(time.Date(2026, 1, 1, 0, 0, sec, 0, time.UTC))
	return n
}

// Each rule of a peer podCIDR, one hostile Node at a time: the podCIDR is
// not routed, and the skip names the rule. Node "b" is a valid peer in
// every case and keeps its route.
func TestRejections(t *testing.T) {
	own := created(node("a", []string{"10.244.0.0/24", "fd00:10:244::/64"}, "198.18.0.11", "fd00:198:18::11"), 1)
	b := created(node("b", []string{"10.244.1.0/24"}, "198.18.0.12"), 2)
	bRoute := "10.244.1.0/24 via 198.18.0.12 dev 7"
	peer := func(cidr string, ips ...string) *corev1.Node { return created(node("h", []string{cidr}, ips...), 3) }
	for _, tc := range []struct {
		name     string
		cluster  []string // nil: testCluster
		nodes    []*corev1.Node
		addrs    []routes.Addr // besides testHostState's
		gateways []string
		noV6     bool
		ownV4    bool     // own Node with an IPv4 podCIDR only
		want     []string // skips; routes are b's plus extra
		extra    []string
		backend  string   // "": host-gw
		tunnel   []string // the IPv4 tunnel's peers, "node vtep mac remote"
	}{
		{name: "unparsable", nodes: []*corev1.Node{peer("10.244.9.0/33", "198.18.0.13")},
			want: []string{"h 10.244.9.0/33: unparsable: not a CIDR"}},
		{name: "v4-mapped", nodes: []*corev1.Node{peer("::ffff:10.244.9.0/120", "198.18.0.13")},
			want: []string{"h ::ffff:10.244.9.0/120: v4-mapped: IPv4-mapped IPv6 prefix"}},
		{name: "zero-length IPv4", nodes: []*corev1.Node{peer("0.0.0.0/0", "198.18.0.13")},
			want: []string{"h 0.0.0.0/0: zero-length: zero length"}},
		{name: "zero-length IPv6", nodes: []*corev1.Node{peer("::/0", "fd00:198:18::13")},
			want: []string{"h ::/0: zero-length: zero length"}},
		{name: "half the address space", nodes: []*corev1.Node{peer("128.0.0.0/1", "198.18.0.13")},
			want: []string{"h 128.0.0.0/1: outside-cluster-cidr: outside cluster CIDR 10.244.0.0/16"}},
		{name: "wider than the cluster CIDR", nodes: []*corev1.Node{peer("10.244.0.0/15", "198.18.0.13")},
			want: []string{"h 10.244.0.0/15: outside-cluster-cidr: outside cluster CIDR 10.244.0.0/16"}},
		{name: "inside the underlay subnet", nodes: []*corev1.Node{peer("198.18.0.0/25", "198.18.0.13")},
			want: []string{"h 198.18.0.0/25: outside-cluster-cidr: outside cluster CIDR 10.244.0.0/16"}},
		{name: "no cluster CIDR of the family", cluster: []string{"10.244.0.0/16"}, ownV4: true,
			nodes: []*corev1.Node{peer("fd00:10:244:9::/64", "fd00:198:18::13")},
			want:  []string{"h fd00:10:244:9::/64: outside-cluster-cidr: no IPv6 cluster CIDR"}},
		{name: "inside the own podCIDR", nodes: []*corev1.Node{peer("10.244.0.128/25", "198.18.0.13")},
			want: []string{"h 10.244.0.128/25: overlaps-own: overlaps own podCIDR 10.244.0.0/24"}},
		{name: "underlay subnet inside the cluster CIDR", cluster: []string{"10.244.0.0/16", "fd00::/8"},
			nodes: []*corev1.Node{peer("fd00:198:18::/80", "fd00:198:18::13")},
			want:  []string{"h fd00:198:18::/80: overlaps-connected: overlaps fd00:198:18::/64 connected on eth0"}},
		{name: "another link's prefix", addrs: []routes.Addr{{Prefix: netip.MustParsePrefix("10.244.200.7/22"), LinkName: "vxlan0"}},
			nodes: []*corev1.Node{peer("10.244.201.0/24", "198.18.0.13")},
			want:  []string{"h 10.244.201.0/24: overlaps-connected: overlaps 10.244.200.0/22 connected on vxlan0"}},
		{name: "default route's gateway", gateways: []string{"10.244.9.1"},
			nodes: []*corev1.Node{peer("10.244.9.0/24", "198.18.0.13")},
			want:  []string{"h 10.244.9.0/24: overlaps-default-route: contains 10.244.9.1, gateway of a default route"}},
		{name: "no InternalIP of the family", nodes: []*corev1.Node{peer("10.244.9.0/24", "fd00:198:18::13")},
			want: []string{"h 10.244.9.0/24: no-internal-ip: no IPv4 InternalIP"}},
		{name: "no underlay of the family", noV6: true, nodes: []*corev1.Node{peer("fd00:10:244:9::/64", "fd00:198:18::13")},
			want: []string{"h fd00:10:244:9::/64: no-underlay: no IPv6 underlay on this node"}},
		{name: "InternalIP not on-link", nodes: []*corev1.Node{peer("10.244.9.0/24", "192.0.2.13")},
			want: []string{"h 10.244.9.0/24: not-on-link: InternalIP 192.0.2.13 not on-link on eth0"}},
		{name: "InternalIP is this node's", nodes: []*corev1.Node{peer("10.244.9.0/24", "198.18.0.11")},
			want: []string{"h 10.244.9.0/24: not-on-link: InternalIP 198.18.0.11 not on-link on eth0"}},
		{name: "copy of an older Node's podCIDR", nodes: []*corev1.Node{peer("10.244.1.0/24", "198.18.0.13")},
			want: []string{"h 10.244.1.0/24: overlaps-peer: overlaps 10.244.1.0/24 of b, created earlier"}},
		{name: "inside an older Node's podCIDR", nodes: []*corev1.Node{peer("10.244.1.128/25", "198.18.0.13")},
			want: []string{"h 10.244.1.128/25: overlaps-peer: overlaps 10.244.1.0/24 of b, created earlier"}},
		{name: "around the own podCIDR", nodes: []*corev1.Node{peer("10.244.0.0/20", "198.18.0.13")},
			want: []string{"h 10.244.0.0/20: overlaps-own: overlaps own podCIDR 10.244.0.0/24"}},
		{name: "older Node wins whatever the names", nodes: []*corev1.Node{created(node("0-young", []string{"10.244.1.0/24"}, "198.18.0.13"), 9)},
			want: []string{"0-young 10.244.1.0/24: overlaps-peer: overlaps 10.244.1.0/24 of b, created earlier"}},
		{name: "older Node wins a prefix around the younger's", nodes: []*corev1.Node{
			created(node("0-young", []string{"10.244.2.0/24"}, "198.18.0.14"), 9),
			created(node("z-old", []string{"10.244.2.0/23"}, "198.18.0.13"), 0)},
			extra: []string{"10.244.2.0/23 via 198.18.0.13 dev 7"},
			want:  []string{"0-young 10.244.2.0/24: overlaps-peer: overlaps 10.244.2.0/23 of z-old, created earlier"}},
		{name: "same creation time: first name wins", nodes: []*corev1.Node{
			created(node("d", []string{"10.244.3.0/24"}, "198.18.0.14"), 3),
			created(node("c", []string{"10.244.3.0/24"}, "198.18.0.13"), 3)},
			extra: []string{"10.244.3.0/24 via 198.18.0.13 dev 7"},
			want:  []string{"d 10.244.3.0/24: overlaps-peer: overlaps 10.244.3.0/24 of c, created earlier"}},
		{name: "an older Node's rejected podCIDR is not held", nodes: []*corev1.Node{
			created(node("z-old", []string{"10.244.4.0/24"}, "192.0.2.9"), 0),
			created(node("0-young", []string{"10.244.4.0/24"}, "198.18.0.14"), 9)},
			extra: []string{"10.244.4.0/24 via 198.18.0.14 dev 7"},
			want:  []string{"z-old 10.244.4.0/24: not-on-link: InternalIP 192.0.2.9 not on-link on eth0"}},
		// Tunnels: the outer destination must be a peer's.
		{name: "auto tunnels to an off-link peer", backend: BackendAuto, nodes: []*corev1.Node{peer("10.244.9.0/24", "192.0.2.13")},
			extra:  []string{"10.244.9.0/24 via 10.244.9.0 dev nb.vxlan onlink"},
			tunnel: []string{"h 10.244.9.0 0e:6e:c0:00:02:0d 192.0.2.13"}},
		{name: "tunnel to loopback", backend: BackendAuto, nodes: []*corev1.Node{peer("10.244.9.0/24", "127.0.0.1")},
			want: []string{"h 10.244.9.0/24: bad-tunnel-endpoint: InternalIP 127.0.0.1 is not a unicast address to tunnel to"}},
		{name: "tunnel to multicast", backend: BackendAuto, nodes: []*corev1.Node{peer("10.244.9.0/24", "239.1.1.1")},
			want: []string{"h 10.244.9.0/24: bad-tunnel-endpoint: InternalIP 239.1.1.1 is not a unicast address to tunnel to"}},
		{name: "tunnel to broadcast", backend: BackendAuto, nodes: []*corev1.Node{peer("10.244.9.0/24", "255.255.255.255")},
			want: []string{"h 10.244.9.0/24: bad-tunnel-endpoint: InternalIP 255.255.255.255 is not a unicast address to tunnel to"}},
		{name: "tunnel to link-local", backend: BackendAuto, nodes: []*corev1.Node{peer("fd00:10:244:9::/64", "fe80::1")},
			want: []string{"h fd00:10:244:9::/64: bad-tunnel-endpoint: InternalIP fe80::1 is not a unicast address to tunnel to"}},
		{name: "tunnel into the pod network", backend: BackendAuto, nodes: []*corev1.Node{peer("10.244.9.0/24", "10.244.1.5")},
			want: []string{"h 10.244.9.0/24: bad-tunnel-endpoint: InternalIP 10.244.1.5 is inside cluster CIDR 10.244.0.0/16"}},
		{name: "tunnel to this node", backend: BackendAuto, nodes: []*corev1.Node{peer("10.244.9.0/24", "198.18.0.11")},
			want: []string{"h 10.244.9.0/24: bad-tunnel-endpoint: InternalIP 198.18.0.11 is an address of this node (on eth0)"}},
		{name: "tunnel to this node's bridge", backend: BackendAuto, ownV4: true, cluster: []string{"10.244.0.0/17"},
			addrs: []routes.Addr{{Prefix: netip.MustParsePrefix("10.250.0.1/24"), LinkName: "br9"}},
			nodes: []*corev1.Node{peer("10.244.9.0/24", "10.250.0.1")},
			want:  []string{"h 10.244.9.0/24: bad-tunnel-endpoint: InternalIP 10.250.0.1 is an address of this node (on br9)"}},
		{name: "a second Node with an older one's InternalIP", backend: BackendVXLAN, nodes: []*corev1.Node{peer("10.244.9.0/24", "198.18.0.12")},
			extra:  []string{}, // b's route goes through the tunnel too: see replaceB
			want:   []string{"h 10.244.9.0/24: vtep-mac-clash: VTEP MAC 0e:6e:c6:12:00:0c of InternalIP 198.18.0.12 is that of b (InternalIP 198.18.0.12), created earlier"},
			tunnel: []string{"b 10.244.1.0 0e:6e:c6:12:00:0c 198.18.0.12"}},
		{name: "host-gw does not tunnel", backend: BackendHostGW, nodes: []*corev1.Node{peer("10.244.9.0/24", "192.0.2.13")},
			want: []string{"h 10.244.9.0/24: not-on-link: InternalIP 192.0.2.13 not on-link on eth0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cluster := testCluster(t)
			if tc.cluster != nil {
				cluster = pfx(t, tc.cluster...)
			}
			hs := testHostState()
			hs.Addrs = append(hs.Addrs, tc.addrs...)
			hs.Gateways = pfxAddrs(tc.gateways...)
			ul := testUnderlays(t)
			if tc.noV6 {
				ul[v6] = nil
			}
			nodes := append([]*corev1.Node{own, b}, tc.nodes...)
			if tc.ownV4 {
				nodes[0] = node("a", []string{"10.244.0.0/24"}, "198.18.0.11", "fd00:198:18::11")
			}
			backend := cmp.Or(tc.backend, BackendHostGW)
			d, err := computeDesired(input{own: "a", nodes: nodes, clusterCIDRs: cluster, underlays: ul, host: hs, backend: backend})
			if err != nil {
				t.Fatal(err)
			}
			wantRoutes := append([]string{bRoute}, tc.extra...)
			if backend == BackendVXLAN {
				wantRoutes[0] = "10.244.1.0/24 via 10.244.1.0 dev nb.vxlan onlink"
			}
			if got := tunnelPeers(d, v4); !slices.Equal(got, tc.tunnel) {
				t.Errorf("IPv4 tunnel peers:\n got %q\nwant %q", got, tc.tunnel)
			}
			if (len(d.unreachable()) > 0) != (backend == BackendHostGW && strings.Contains(fmt.Sprint(tc.want), "not-on-link")) {
				t.Errorf("unreachable: %v", d.unreachable())
			}
			slices.Sort(wantRoutes)
			if got := routeList(d); !slices.Equal(got, wantRoutes) {
				t.Errorf("routes:\n got %q\nwant %q", got, wantRoutes)
			}
			if got := skipList(d); !slices.Equal(got, tc.want) {
				t.Errorf("skipped:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// The own Node's podCIDRs must be inside the cluster CIDRs: otherwise the
// node is not configured at all, and the skips say why.
func TestComputeDesiredOwnRejected(t *testing.T) {
	for _, tc := range []struct {
		name, podCIDR, want string
	}{
		{"outside", "10.245.0.0/24", "a 10.245.0.0/24: outside-cluster-cidr: outside cluster CIDR 10.244.0.0/16"},
		{"zero length", "0.0.0.0/0", "a 0.0.0.0/0: zero-length: zero length"},
		{"v4-mapped", "::ffff:10.244.0.0/120", "a ::ffff:10.244.0.0/120: v4-mapped: IPv4-mapped IPv6 prefix"},
		{"unparsable", "10.244.0.0/33", "a 10.244.0.0/33: unparsable: not a CIDR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nodes := []*corev1.Node{node("a", []string{tc.podCIDR}, "198.18.0.11"), node("b", []string{"10.244.1.0/24"}, "198.18.0.12")}
			d, err := computeDesired(input{own: "a", nodes: nodes, clusterCIDRs: testCluster(t), underlays: testUnderlays(t), host: testHostState()})
			if !errors.Is(err, errOwnPodCIDR) || !strings.Contains(err.Error(), tc.podCIDR) {
				t.Errorf("error: got %v, want %v naming %s", err, errOwnPodCIDR, tc.podCIDR)
			}
			if got := skipList(d); !slices.Equal(got, []string{tc.want}) || !d.skipped[0].own || len(d.routes) != 0 {
				t.Errorf("got skips %q (own %v) routes %v, want %q only", got, len(d.skipped) > 0 && d.skipped[0].own, d.routes, tc.want)
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
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := computeDesired(input{own: "a", nodes: tc.nodes, clusterCIDRs: testCluster(t), underlays: ul}); !errors.Is(err, tc.want) {
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
		d, err := computeDesired(input{own: "a", nodes: s.nodes, clusterCIDRs: testCluster(t), underlays: ul, host: testHostState()})
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := routeList(d); !slices.Equal(got, s.want) {
			t.Errorf("%s: got %q, want %q", s.name, got, s.want)
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

// Another protocol's route to a peer's podCIDR: taken over when it goes to
// the peer's InternalIP on the underlay, else the podCIDR is skipped and
// the route named; the other peers are routed either way.
func TestComputeDesiredForeignRoutes(t *testing.T) {
	hs := testHostState()
	foreign := func(dst, gw string, link int) netlink.Route {
		return netlink.Route{Dst: ipNetOf(t, dst), Gw: net.ParseIP(gw), LinkIndex: link, Protocol: unix.RTPROT_BOOT, Type: unix.RTN_UNICAST}
	}
	hs.Foreign = map[netip.Prefix]netlink.Route{}
	for _, r := range []netlink.Route{foreign("10.244.1.0/24", "198.18.0.12", 7), foreign("10.244.2.0/24", "198.18.0.99", 7),
		foreign("10.244.3.0/24", "198.18.0.14", 8)} {
		dst, _ := netip.ParsePrefix(r.Dst.String())
		hs.Foreign[dst] = r
	}
	nodes := []*corev1.Node{node("a", []string{"10.244.0.0/24"}, "198.18.0.11"),
		node("b", []string{"10.244.1.0/24"}, "198.18.0.12"), node("c", []string{"10.244.2.0/24"}, "198.18.0.13"),
		node("d", []string{"10.244.3.0/24"}, "198.18.0.14"), node("e", []string{"10.244.4.0/24"}, "198.18.0.15")}
	d, err := computeDesired(input{own: "a", nodes: nodes, clusterCIDRs: testCluster(t), underlays: testUnderlays(t), host: hs})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := routeList(d), []string{"10.244.1.0/24 via 198.18.0.12 dev 7", "10.244.4.0/24 via 198.18.0.15 dev 7"}; !slices.Equal(got, want) {
		t.Errorf("routes:\n got %q\nwant %q", got, want)
	}
	if len(d.takeover) != 1 || d.takeover[0].Dst.String() != "10.244.1.0/24" {
		t.Errorf("takeover: %v, want the route to 10.244.1.0/24", d.takeover)
	}
	want := []string{
		"c 10.244.2.0/24: foreign-route: a route of another protocol (proto boot) via 198.18.0.99 dev eth0 holds the destination",
		"d 10.244.3.0/24: foreign-route: a route of another protocol (proto boot) via 198.18.0.14 dev #8 holds the destination"}
	if got := skipList(d); !slices.Equal(got, want) {
		t.Errorf("skipped:\n got %q\nwant %q", got, want)
	}
}

// ipNetOf parses a CIDR for a netlink route.
func ipNetOf(t *testing.T, s string) *net.IPNet {
	t.Helper()
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
