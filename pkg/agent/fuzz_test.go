package agent

import (
	"cmp"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nodebridge/nodebridge/pkg/routes"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// scenario is one fuzz input: the cluster CIDRs, the node's addressing and
// the Nodes, read from lines of text (malformed lines are skipped):
//
//	cluster PREFIX...            the cluster CIDRs
//	addr LINK ADDRESS/LEN        an address of the node netns
//	gw ADDRESS                   a default route's gateway
//	foreign PREFIX GW LINK       another protocol's route (LINK as in addr)
//	node NAME SECOND CIDRS IPS   a Node (the first is the own one); CIDRS
//	                             and IPS comma-separated, "-" for none
type scenario struct {
	cluster []netip.Prefix
	host    routes.Host
	nodes   []*corev1.Node
	backend string // a "backend" line; default host-gw
}

// parseScenario reads a scenario, leniently: the fuzzer mutates the text.
func parseScenario(text string) scenario {
	var sc scenario
	links := map[string]int{}
	names := map[string]bool{} // the cache holds one Node per name
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 2 && f[0] == "cluster":
			for _, s := range f[1:] {
				if p, err := netip.ParsePrefix(s); err == nil {
					sc.cluster = append(sc.cluster, p.Masked())
				}
			}
		case len(f) == 3 && f[0] == "addr":
			p, err := netip.ParsePrefix(f[2])
			if _, ok := links[f[1]]; !ok {
				links[f[1]] = len(links) + 1
			}
			if err == nil {
				sc.host.Addrs = append(sc.host.Addrs, routes.Addr{Prefix: netip.PrefixFrom(p.Addr().Unmap(), p.Bits()),
					LinkIndex: links[f[1]], LinkName: f[1], MTU: 1500})
			}
		case len(f) == 2 && f[0] == "backend" && (f[1] == BackendAuto || f[1] == BackendVXLAN || f[1] == BackendHostGW):
			sc.backend = f[1]
		case len(f) == 2 && f[0] == "gw":
			if a, err := netip.ParseAddr(f[1]); err == nil {
				sc.host.Gateways = append(sc.host.Gateways, a.Unmap())
			}
		case len(f) == 4 && f[0] == "foreign":
			sc.addForeign(f[1], f[2], links[f[3]])
		case len(f) == 5 && f[0] == "node" && !names[f[1]]:
			names[f[1]] = true
			sc.nodes = append(sc.nodes, scenarioNode(f[1], f[2], f[3], f[4]))
		}
	}
	return sc
}

// addForeign adds another protocol's route to dst via gw on link (0: a
// link without addresses).
func (sc *scenario) addForeign(dst, gw string, link int) {
	p, err1 := netip.ParsePrefix(dst)
	a, err2 := netip.ParseAddr(gw)
	if err1 != nil || err2 != nil {
		return
	}
	p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()).Masked()
	if sc.host.Foreign == nil {
		sc.host.Foreign = map[netip.Prefix]netlink.Route{}
	}
	sc.host.Foreign[p] = netlink.Route{Dst: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())},
		Gw: a.AsSlice(), LinkIndex: link, Protocol: unix.RTPROT_BOOT, Type: unix.RTN_UNICAST}
}

// scenarioNode builds a Node from a scenario line's fields.
func scenarioNode(name, second, cidrs, ips string) *corev1.Node {
	list := func(s string) []string {
		if s == "-" {
			return nil
		}
		return strings.Split(s, ",")
	}
	n := node(name, list(cidrs), list(ips)...)
	n.UID = "uid-" + n.UID
	sec, _ := strconv.Atoi(second) // not a number: the epoch
	n.CreationTimestamp = metav1.NewTime(time.Unix(int64(sec), 0))
	return n
}

// fuzzSeeds are the hostile cases of issue 16, and some more.
const fuzzBase = `cluster 10.244.0.0/16 fd00:10:244::/56
addr eth0 198.18.0.11/24
addr eth0 fd00:198:18::11/64
addr cni0 10.244.0.1/24
addr lo 127.0.0.1/8
gw 198.18.0.1
gw fd00:198:18::1
node a 5 10.244.0.0/24,fd00:10:244::/64 198.18.0.11,fd00:198:18::11
`

func fuzzSeeds() []string {
	return []string{
		fuzzBase + "node b 6 10.244.1.0/24,fd00:10:244:1::/64 198.18.0.12,fd00:198:18::12\n",
		fuzzBase + "foreign 10.244.1.0/24 198.18.0.12 eth0\nforeign 10.244.2.0/24 198.18.0.99 eth0\nforeign fd00:10:244:1::/64 fd00:198:18::12 cni0\n" +
			"node b 6 10.244.1.0/24,fd00:10:244:1::/64 198.18.0.12,fd00:198:18::12\nnode c 7 10.244.2.0/24 198.18.0.13\n",
		fuzzBase + "node h 6 128.0.0.0/1 198.18.0.12\n",
		fuzzBase + "node h 6 198.18.0.0/25 198.18.0.12\n",
		fuzzBase + "node b 6 10.244.1.0/24 198.18.0.12\nnode h 7 10.244.1.0/25 198.18.0.13\n",
		fuzzBase + "node h 6 ::/0 fd00:198:18::12\nnode i 6 0.0.0.0/0 198.18.0.13\n",
		fuzzBase + "node h 6 172.16.0.0/24 198.18.0.12\n",
		fuzzBase + "node z 6 10.244.1.0/24 198.18.0.12\nnode b 9 10.244.1.0/24 198.18.0.13\n",
		fuzzBase + "node h 6 ::ffff:10.244.9.0/120 198.18.0.12\n",
		fuzzBase + "node h 6 10.244.9.0/24,10.244.9.0/24,garbage 198.18.0.12,198.18.0.13,::ffff:198.18.0.14\n",
		fuzzBase + "node h 5 10.244.2.0/23 198.18.0.12\nnode i 5 10.244.2.0/24 198.18.0.13\nnode j 5 10.244.3.0/24 -\n",
		fuzzBase + "addr vx0 10.244.200.1/22\ngw 10.244.9.1\nnode h 6 10.244.201.0/24,10.244.9.0/24 198.18.0.12\n",
		fuzzBase + "node h 6 10.244.9.0/24 192.0.2.1\nnode i 6 10.244.10.0/24 198.18.0.11\n",
		"cluster 0.0.0.0/0 ::/0\naddr eth0 198.18.0.11/24\nnode a 1 10.244.0.0/24 198.18.0.11\nnode h 2 10.244.1.0/24 198.18.0.12\n",
		"cluster ::ffff:10.0.0.0/104\naddr eth0 198.18.0.11/24\nnode a 1 ::ffff:10.244.0.0/120 198.18.0.11\n",
		"cluster 10.244.0.0/16\naddr eth0 198.18.0.11/24\nnode a 1 10.245.0.0/24 198.18.0.11\nnode h 2 10.244.1.0/24 198.18.0.12\n",
		"cluster 10.244.0.0/16\naddr eth0 ::ffff:198.18.0.11/120\nnode a 1 10.244.0.0/24 ::ffff:198.18.0.11\nnode h 2 10.244.1.0/24 198.18.0.12\n",
		"backend auto\n" + fuzzBase + "node b 6 10.244.1.0/24,fd00:10:244:1::/64 192.0.2.12,fd00:198:19::12\nnode c 7 10.244.2.0/24 198.18.0.13\n" +
			"node h 8 10.244.3.0/24 10.244.1.7\nnode i 9 10.244.4.0/24 127.0.0.1\nnode j 9 10.244.5.0/24 192.0.2.12\n",
		"backend vxlan\n" + fuzzBase + "node b 6 10.244.1.0/24,fd00:10:244:1::/64 198.18.0.12,fe80::1\nnode c 7 10.244.2.0/24 198.18.0.11\n",
	}
}

// FuzzComputeDesired: no set of Nodes, cluster CIDRs or host addressing
// makes computeDesired panic, and every route it yields obeys every rule,
// checked here without its code.
func FuzzComputeDesired(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		sc := parseScenario(text)
		if len(sc.nodes) == 0 {
			return
		}
		if checkClusterCIDRs("cluster", sc.cluster) != nil {
			return // refused at start: the agent never computes with them
		}
		checkClusterValid(t, sc.cluster)
		own := readNodeIPs(sc.nodes[0])
		ul, _ := underlaysOf(own, sc.host.Addrs)
		backend := cmp.Or(sc.backend, BackendHostGW)
		d, err := computeDesired(input{own: sc.nodes[0].Name, nodes: sc.nodes, clusterCIDRs: sc.cluster, underlays: ul, host: sc.host, backend: backend})
		if err != nil {
			if len(d.routes) > 0 {
				t.Fatalf("error %v with %d routes", err, len(d.routes))
			}
			if !errors.Is(err, errOwnPodCIDR) && !errors.Is(err, errNoPodCIDR) && !errors.Is(err, errNoOwnNode) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		ownCIDRs := parsedCIDRs(ownNode(sc.nodes))
		for _, p := range ownCIDRs {
			if !insideCluster(p, sc.cluster) {
				t.Fatalf("own podCIDR %s used, outside the cluster CIDRs %v", p, sc.cluster)
			}
		}
		for _, r := range d.routes {
			checkRoute(t, r, d, sc, ownCIDRs)
		}
		checkAccounting(t, d, sc)
		checkTakeover(t, d, sc)
		checkTunnels(t, d, sc, backend)
	})
}

// checkTunnels: only auto and vxlan tunnel; each tunnel's peers have
// distinct MACs, each derived from the peer's InternalIP of the family.
func checkTunnels(t *testing.T, d desired, sc scenario, backend string) {
	t.Helper()
	for f, tp := range d.tunnels {
		if tp == nil {
			continue
		}
		if backend == BackendHostGW {
			t.Fatalf("a %s tunnel with --backend=host-gw", familyName(f))
		}
		macs := map[string]bool{}
		for _, p := range tp.peers {
			m := p.MAC.String()
			if macs[m] || m != routes.VTEPMAC(p.Remote).String() {
				t.Fatalf("tunnel peer %+v: MAC twice or not its InternalIP's", p)
			}
			macs[m] = true
		}
	}
}

// checkClusterValid: what checkClusterCIDRs lets through is one plain,
// non-empty prefix per family.
func checkClusterValid(t *testing.T, cluster []netip.Prefix) {
	seen := map[int]bool{}
	for _, c := range cluster {
		if c.Bits() == 0 || c.Addr().Is4In6() || seen[c.Addr().BitLen()] {
			t.Fatalf("cluster CIDRs %v accepted", cluster)
		}
		seen[c.Addr().BitLen()] = true
	}
}

// ownNode is the own Node: the first of the scenario's name, as the
// informer cache holds one Node per name.
func ownNode(nodes []*corev1.Node) *corev1.Node { return nodes[0] }

// readNodeIPs returns the first InternalIP of each family, unmapped.
func readNodeIPs(n *corev1.Node) [2]netip.Addr {
	var out [2]netip.Addr
	for _, a := range n.Status.Addresses {
		ip, err := netip.ParseAddr(a.Address)
		if err != nil || a.Type != corev1.NodeInternalIP {
			continue
		}
		ip = ip.Unmap()
		f := 0
		if ip.Is6() {
			f = 1
		}
		if !out[f].IsValid() {
			out[f] = ip
		}
	}
	return out
}

// parsedCIDRs returns a Node's podCIDRs that parse, masked.
func parsedCIDRs(n *corev1.Node) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range n.Spec.PodCIDRs {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// insideCluster: p is within a cluster CIDR of the same address length.
func insideCluster(p netip.Prefix, cluster []netip.Prefix) bool {
	for _, c := range cluster {
		if c.Addr().BitLen() == p.Addr().BitLen() && c.Bits() <= p.Bits() && c.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// checkRoute checks one route against every rule of issue 16.
func checkRoute(t *testing.T, r routes.Route, d desired, sc scenario, own []netip.Prefix) {
	t.Helper()
	switch {
	case r.Dst != r.Dst.Masked() || r.Dst.Bits() <= 0 || r.Dst.Addr().Is4In6():
		t.Fatalf("route %v: not a plain prefix", r)
	case !insideCluster(r.Dst, sc.cluster):
		t.Fatalf("route %v outside the cluster CIDRs %v", r, sc.cluster)
	}
	for _, o := range own {
		if o.Overlaps(r.Dst) {
			t.Fatalf("route %v overlaps own podCIDR %s", r, o)
		}
	}
	for _, o := range d.routes {
		if o.Dst != r.Dst && o.Dst.Overlaps(r.Dst) {
			t.Fatalf("routes %v and %v overlap", r, o)
		}
	}
	for _, a := range sc.host.Addrs {
		if a.Prefix.Masked().Overlaps(r.Dst) {
			t.Fatalf("route %v overlaps %s connected on %s", r, a.Prefix, a.LinkName)
		}
	}
	for _, gw := range sc.host.Gateways {
		if r.Dst.Contains(gw) {
			t.Fatalf("route %v contains default gateway %s", r, gw)
		}
	}
	if r.Onlink {
		checkTunnelRoute(t, r, d, sc)
		return
	}
	checkGateway(t, r, sc)
	if f, ok := sc.host.Foreign[r.Dst]; ok && (!net.IP(r.Gw.AsSlice()).Equal(f.Gw) || f.LinkIndex != r.LinkIndex) {
		t.Fatalf("route %v where another protocol's route goes elsewhere: %v", r, f)
	}
}

// checkTakeover: only another protocol's routes to a routed destination
// are taken over, once each.
func checkTakeover(t *testing.T, d desired, sc scenario) {
	t.Helper()
	seen := map[string]bool{}
	for _, f := range d.takeover {
		dst, _ := netip.ParsePrefix(f.Dst.String())
		if _, routed := d.routes[dst]; !routed || seen[dst.String()] {
			t.Fatalf("takeover of %v: routed %v, twice %v", f, routed, seen[dst.String()])
		}
		seen[dst.String()] = true
	}
}

// checkGateway: the gateway is the peer's InternalIP, on-link on the link
// holding the own InternalIP of the family, and not the own address.
func checkGateway(t *testing.T, r routes.Route, sc scenario) {
	t.Helper()
	own := readNodeIPs(ownNode(sc.nodes))[familyOf(r.Gw)]
	onLink, ownLink := false, false
	for _, a := range sc.host.Addrs {
		if a.LinkIndex != r.LinkIndex {
			continue
		}
		ownLink = ownLink || a.Prefix.Addr() == own
		onLink = onLink || (a.Prefix.Masked().Contains(r.Gw) && a.Prefix.Addr() != r.Gw)
	}
	if !onLink || !ownLink || r.Gw == own {
		t.Fatalf("route %v: gateway not on-link on the underlay (own %s)", r, own)
	}
	for _, n := range sc.nodes[1:] {
		if n.Name == r.Node && readNodeIPs(n)[familyOf(r.Gw)] == r.Gw && containsPrefix(parsedCIDRs(n), r.Dst) {
			return
		}
	}
	t.Fatalf("route %v: no peer %s with that podCIDR and InternalIP", r, r.Node)
}

// checkTunnelRoute: a route through the tunnel goes via the first address
// of one of the peer's podCIDRs, to a peer of the family's tunnel whose
// InternalIP is a unicast address outside the cluster CIDRs and not the
// node's own, and no other protocol's route holds its destination.
func checkTunnelRoute(t *testing.T, r routes.Route, d desired, sc scenario) {
	t.Helper()
	f := familyOf(r.Dst.Addr())
	if _, ok := sc.host.Foreign[r.Dst]; ok || d.tunnels[f] == nil || r.LinkName != tunnelName(f) {
		t.Fatalf("tunnel route %v: foreign route, no %s tunnel, or the wrong device", r, familyName(f))
	}
	var peer *routes.Peer
	for i, p := range d.tunnels[f].peers {
		if p.Node == r.Node && p.VTEP == r.Gw {
			peer = &d.tunnels[f].peers[i]
		}
	}
	if peer == nil {
		t.Fatalf("tunnel route %v: no tunnel peer %s with VTEP %s", r, r.Node, r.Gw)
	}
	ip := peer.Remote
	if !ip.IsGlobalUnicast() || insideCluster(netip.PrefixFrom(ip, ip.BitLen()), sc.cluster) {
		t.Fatalf("tunnel route %v: endpoint %s not unicast, or inside the cluster CIDRs", r, ip)
	}
	for _, a := range sc.host.Addrs {
		if a.Prefix.Addr() == ip {
			t.Fatalf("tunnel route %v: endpoint %s is this node's", r, ip)
		}
	}
	for _, n := range sc.nodes[1:] {
		if n.Name != r.Node || readNodeIPs(n)[f] != ip {
			continue
		}
		for _, q := range parsedCIDRs(n) {
			if q.Addr() == r.Gw && containsPrefix(parsedCIDRs(n), r.Dst) {
				return
			}
		}
	}
	t.Fatalf("tunnel route %v: VTEP %s is no podCIDR of peer %s with InternalIP %s", r, r.Gw, r.Node, ip)
}

func containsPrefix(ps []netip.Prefix, p netip.Prefix) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// checkAccounting: every peer podCIDR is routed or skipped, once.
func checkAccounting(t *testing.T, d desired, sc scenario) {
	t.Helper()
	want := 0
	for _, n := range sc.nodes {
		if n.Name != ownNode(sc.nodes).Name {
			want += len(n.Spec.PodCIDRs)
		}
	}
	if got := len(d.routes) + len(d.skipped); got != want {
		t.Fatalf("%d routes + %d skips for %d peer podCIDRs", len(d.routes), len(d.skipped), want)
	}
}
