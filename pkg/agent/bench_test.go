package agent

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/nodebridge/nodebridge/internal/testenv"
	"github.com/nodebridge/nodebridge/pkg/routes"
	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
)

// benchNodes returns n Nodes: "node-0" is the own one; podCIDRs are /24s
// of 10.0.0.0/8 and InternalIPs on-link in 198.18.0.0/15.
func benchNodes(n int) []*corev1.Node {
	nodes := make([]*corev1.Node, n)
	for i := range nodes {
		ip := fmt.Sprintf("198.18.%d.%d", 1+i/250, 1+i%250)
		if i == 0 {
			ip = "198.18.0.11"
		}
		nodes[i] = node(fmt.Sprintf("node-%d", i), []string{fmt.Sprintf("10.%d.%d.0/24", i/256, i%256)}, ip)
	}
	return nodes
}

// BenchmarkDesiredAndDiff is the pure part of a reconcile at 1,000 Nodes
// with every route already installed.
func BenchmarkDesiredAndDiff(b *testing.B) {
	nodes := benchNodes(1000)
	ul := [2]*routes.Underlay{{Addr: netip.MustParseAddr("198.18.0.11"), LinkIndex: 7, LinkName: "eth0", MTU: 1500,
		Connected: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/15")}}}
	in := input{own: "node-0", nodes: nodes, clusterCIDRs: pfx(b, "10.0.0.0/8"), underlays: ul,
		host: routes.Host{Addrs: []routes.Addr{{Prefix: netip.MustParsePrefix("198.18.0.11/15"), LinkIndex: 7, LinkName: "eth0"}}}}
	d, err := computeDesired(in)
	if err != nil || len(d.routes) != 999 {
		b.Fatalf("routes %d err %v", len(d.routes), err)
	}
	var have []netlink.Route
	for _, r := range d.routes {
		dst := &net.IPNet{IP: r.Dst.Addr().AsSlice(), Mask: net.CIDRMask(r.Dst.Bits(), r.Dst.Addr().BitLen())}
		have = append(have, netlink.Route{Dst: dst, Gw: r.Gw.AsSlice(), LinkIndex: 7, Protocol: routes.Protocol})
	}
	// Nothing to change: SyncWith only diffs, and never reaches the kernel.
	rs := routes.NewSyncer(nil, nil, discard())
	for b.Loop() {
		d, _ := computeDesired(in)
		if installed, changes, err := rs.SyncWith(d.routes, have); installed != 999 || changes != 0 || err != nil {
			b.Fatalf("diff: %d in place, %d changes, err %v; want 999, 0", installed, changes, err)
		}
	}
}

// BenchmarkReconcile1000 is one full reconcile at 999 installed routes, as
// the resync ticker runs it when nothing changed: Nodes from the cache,
// underlay lookup, conflist read, rules from the cache, one route dump.
func BenchmarkReconcile1000(b *testing.B) {
	th := newHostB(b)
	testenv.Run(b, th.name, "ip", "addr", "add", "198.19.255.254/15", "dev", "ul0")
	src := &staticNodes{}
	src.set(benchNodes(1000)...)
	cfg := Defaults()
	cfg.NodeName, cfg.CNIConfDir = "node-0", b.TempDir()
	cfg.ClusterCIDRs = pfx(b, "10.0.0.0/8")
	a := newAgent(cfg, discard(), th.h, th.rt)
	a.rules.backend, a.nodes = rulesIn(b, th.ns, ""), src.list
	ctx := context.Background()
	if err := a.reconcile(ctx, true); err != nil {
		b.Fatal(err)
	}
	if a.metrics.routesInstalled != 999 {
		b.Fatalf("installed %d routes, want 999", a.metrics.routesInstalled)
	}
	for b.Loop() {
		if err := a.reconcile(ctx, false); err != nil {
			b.Fatal(err)
		}
	}
	if a.metrics.routeChanges != 999 {
		b.Errorf("route changes %d, want the 999 first adds only", a.metrics.routeChanges)
	}
}
