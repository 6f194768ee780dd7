package main_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nodebridge/nodebridge/internal/lab"
	"github.com/nodebridge/nodebridge/internal/testenv"
	"github.com/nodebridge/nodebridge/pkg/routes"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// twoSubnetSpec is the Node object of node i in subnet s.
func twoSubnetSpec(i, s int) lab.NodeSpec {
	spec := baseSpec(i)
	spec.InternalIPs = []netip.Addr{lab.NodeIPv4In(i, s), lab.NodeIPv6In(i, s)}
	return spec
}

// TestTwoSubnets runs three dual-stack nodes, two in underlay subnet 0 and
// one in subnet 1, joined by the lab netns as a router that knows no pod
// route, every agent with the default --backend=auto (the first two with
// the nftables rules backend, the third with iptables), FORWARD policy
// DROP everywhere. Same-subnet peers are routed the host-gw way, the
// others through the VXLAN devices; pods reach each other across the
// tunnel with their own addresses and full-size DF packets, and the
// outside masqueraded. Then: a node moved to the other subnet, a hostile
// Node that must gain no FDB entry, an FDB entry deleted by hand, a Node
// deleted while its peers' agent was down, and --backend=host-gw's honest
// unreadiness.
func TestTwoSubnets(t *testing.T) {
	testenv.RequireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := startCluster(t, ctx)
	backends := []string{"nftables", "nftables", "iptables"}
	for i, s := range []int{0, 0, 1} {
		spec := twoSubnetSpec(i+1, s)
		n, err := c.lab.AddNodeIn(ctx, spec.Name, i+1, s)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := n.Close(); err != nil {
				t.Errorf("close node %s: %v", n.Name, err)
			}
		})
		c.createNode(t, ctx, spec)
		if err := n.StartAgent(append(agentFlags(), "--ipmasq-backend="+backends[i])...); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("agent log of %s:\n%s", n.Name, n.AgentLogs())
			}
		})
		c.nodes = append(c.nodes, n)
	}
	for _, n := range c.nodes {
		waitReady(t, n)
	}
	c.waitRoutes(t, "two subnets", routeDeadline, c.nodes...)
	for _, n := range c.nodes {
		c.pods = append(c.pods, addPod(t, ctx, n, "pod-"+n.Name))
	}
	for _, step := range []struct {
		name string
		run  func(t *testing.T, c *cluster)
	}{
		{"Paths", testTunnelPaths},
		{"PodToPod", testTunnelPodToPod},
		{"FullSizeDF", testTunnelFullSize},
		{"Masqueraded", func(t *testing.T, c *cluster) { checkMasqueraded(t, c, c.pods[2], c.nodes[2]) }},
		{"FDBDeletedByHand", testFDBDeletedByHand},
		{"HostileTunnelEndpoints", testHostileTunnelEndpoints},
		{"NodeMoved", testNodeMoved},
		{"StalePeerAfterRestart", testStalePeerAfterRestart},
		{"HostGWUnreachable", testHostGWUnreachable},
	} {
		if !t.Run(step.name, func(t *testing.T) { step.run(t, c) }) {
			t.Fatalf("%s failed: stopping", step.name)
		}
	}
}

// tunnelState is n's VXLAN devices' forwarding entries, "dev mac dst ip",
// sorted: none for a device that is not there.
func tunnelState(ctx context.Context, n *lab.Node) []string {
	var out []string
	for _, dev := range []string{"nb.vxlan", "nb.vxlan6"} {
		text, err := n.Exec(ctx, "bridge", "fdb", "show", "dev", dev)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
			if f := strings.Fields(l); len(f) >= 3 && f[1] == "dst" {
				out = append(out, dev+" "+f[0]+" dst "+f[2])
			}
		}
	}
	slices.Sort(out)
	return out
}

// wantFDB is the entries n should have: one per off-subnet peer and family.
func (c *cluster) wantFDB(n *lab.Node) []string {
	var out []string
	own := c.specs[n.Name]
	for name, s := range c.specs {
		if name == n.Name || len(s.PodCIDRs) == 0 {
			continue
		}
		for _, ip := range s.InternalIPs {
			if onSubnet(own, ip) {
				continue
			}
			dev := "nb.vxlan"
			if ip.Is6() {
				dev = "nb.vxlan6"
			}
			out = append(out, dev+" "+vtepMAC(ip)+" dst "+ip.String())
		}
	}
	slices.Sort(out)
	return out
}

// vtepMAC is the MAC the agents derive from a node address.
func vtepMAC(ip netip.Addr) string { return routes.VTEPMAC(ip).String() }

// sameTunnels compares n's routes and FDB entries with what the Node
// objects call for.
func (c *cluster) sameTunnels(ctx context.Context, n *lab.Node) error {
	if err := sameRoutes(ctx, n, c.wantRoutes(n)); err != nil {
		return err
	}
	if got, want := tunnelState(ctx, n), c.wantFDB(n); !slices.Equal(got, want) {
		return fmt.Errorf("fdb of %s:\n  got  %q\n  want %q", n.Name, got, want)
	}
	return nil
}

// waitTunnels waits until every node's routes and entries are as wanted.
func (c *cluster) waitTunnels(t *testing.T, what string) {
	t.Helper()
	for _, n := range c.nodes {
		d := waitFor(t, routeDeadline, what+": "+n.Name, func() error { return c.sameTunnels(context.Background(), n) })
		t.Logf("%s: %s in place after %v", what, n.Name, d.Round(time.Millisecond))
	}
}

// testTunnelPaths: same-subnet peers host-gw (the route's device is eth0,
// no VXLAN), the others through the tunnel, with one FDB entry each; the
// devices carry the underlay MTU less the overhead and the VTEP address.
func testTunnelPaths(t *testing.T, c *cluster) {
	ctx := context.Background()
	c.waitTunnels(t, "two subnets")
	n1 := c.nodes[0]
	out, err := n1.Exec(ctx, "ip", "route", "get", c.pods[1].IP(false).String())
	if err != nil || !strings.Contains(out, "dev eth0") {
		t.Errorf("route from %s to a same-subnet pod: %v %s, want dev eth0", n1.Name, err, out)
	}
	out, err = n1.Exec(ctx, "ip", "route", "get", c.pods[2].IP(false).String())
	if err != nil || !strings.Contains(out, "dev nb.vxlan") {
		t.Errorf("route from %s to an other-subnet pod: %v %s, want dev nb.vxlan", n1.Name, err, out)
	}
	for dev, want := range map[string]string{"nb.vxlan": "mtu 1450", "nb.vxlan6": "mtu 1430"} {
		out, err := n1.Exec(ctx, "ip", "-d", "link", "show", dev)
		if err != nil || !strings.Contains(out, want) || !strings.Contains(out, "id 1 ") || !strings.Contains(out, "dstport 8472") || !strings.Contains(out, "nolearning") {
			t.Errorf("%s of %s: %v %s", dev, n1.Name, err, out)
		}
	}
	out, err = n1.Exec(ctx, "ip", "-br", "addr", "show", "dev", "nb.vxlan")
	if err != nil || !strings.Contains(out, "10.244.1.0/32") {
		t.Errorf("VTEP address of %s: %v %s", n1.Name, err, out)
	}
	// What node 1 forwards to node 3 is what node 3's devices answer to.
	n3 := c.nodes[2]
	for dev, ip := range map[string]netip.Addr{"nb.vxlan": n3.IPv4(), "nb.vxlan6": n3.IPv6()} {
		mac, err := n3.Exec(ctx, "cat", "/sys/class/net/"+dev+"/address")
		if want := dev + " " + strings.TrimSpace(mac) + " dst " + ip.String(); err != nil || !slices.Contains(tunnelState(ctx, n1), want) {
			t.Errorf("%s of %s has MAC %s %v: no %q in %s's fdb %q", dev, n3.Name, mac, err, want, n1.Name, tunnelState(ctx, n1))
		}
	}
}

// testTunnelPodToPod: every pod reaches every other with its own address,
// both families, through the tunnel or not.
func testTunnelPodToPod(t *testing.T, c *cluster) {
	for _, v6 := range []bool{false, true} {
		for i, a := range c.pods {
			for j, b := range c.pods {
				if i != j {
					assertNoNAT(t, a, b, v6)
				}
			}
		}
	}
}

// testTunnelFullSize: a packet of the pods' full MTU with DF set crosses
// the tunnel both ways, both families, and one a byte larger is refused at
// the pod (its MTU), not lost in the underlay.
func testTunnelFullSize(t *testing.T, c *cluster) {
	ctx := context.Background()
	a, b := c.pods[0], c.pods[2]
	mtu, err := a.Exec(ctx, "cat", "/sys/class/net/eth0/mtu")
	if err != nil || strings.TrimSpace(mtu) != "1430" {
		t.Fatalf("pod MTU: %q %v, want 1430", mtu, err)
	}
	for _, v6 := range []bool{false, true} {
		size := 1430 - 28 // IPv4 and ICMP headers
		if v6 {
			size = 1430 - 48
		}
		for _, pair := range [][2]*lab.Pod{{a, b}, {b, a}} {
			from, to := pair[0], pair[1]
			dst := to.IP(v6).String()
			waitFor(t, 5*time.Second, fmt.Sprintf("%s pings %s with %d bytes, DF", from.Name, dst, size), func() error {
				_, err := from.Exec(ctx, "ping", "-c", "1", "-W", "1", "-M", "do", "-s", fmt.Sprint(size), dst)
				return err
			})
			if out, err := from.Exec(ctx, "ping", "-c", "1", "-W", "1", "-M", "do", "-s", fmt.Sprint(size+1), dst); err == nil {
				t.Errorf("%s: %d bytes with DF went through a %d MTU: %s", from.Name, size+1, 1430, out)
			}
		}
	}
}

// testFDBDeletedByHand: an operator deletes a forwarding entry and a
// neighbour entry: the agent puts them back at once.
func testFDBDeletedByHand(t *testing.T, c *cluster) {
	ctx := context.Background()
	n1, n3 := c.nodes[0], c.nodes[2]
	mac := vtepMAC(n3.IPv4())
	if _, err := n1.Exec(ctx, "bridge", "fdb", "del", mac, "dev", "nb.vxlan", "dst", n3.IPv4().String()); err != nil {
		t.Fatal(err)
	}
	if _, err := n1.Exec(ctx, "ip", "neigh", "del", "10.244.3.0", "dev", "nb.vxlan"); err != nil {
		t.Fatal(err)
	}
	c.waitTunnels(t, "entries deleted by hand")
	waitFor(t, routeDeadline, "neighbour entry back", func() error {
		out, err := n1.Exec(ctx, "ip", "neigh", "show", "10.244.3.0", "dev", "nb.vxlan")
		if err != nil || !strings.Contains(out, mac) || !strings.Contains(out, "PERMANENT") {
			return fmt.Errorf("%v %s", err, out)
		}
		return nil
	})
	assertNoNAT(t, c.pods[0], c.pods[2], false)
}

// testHostileTunnelEndpoints: Nodes whose InternalIP would make a tunnel
// lead somewhere else than a peer (a pod address, loopback, a node's own
// address copied) gain no FDB entry and no route, each with an Event; the
// honest entries stay.
func testHostileTunnelEndpoints(t *testing.T, c *cluster) {
	ctx := context.Background()
	p := netip.MustParsePrefix
	hostile := []lab.NodeSpec{
		{Name: "hostile-tunnel-pod", PodCIDRs: []netip.Prefix{p("10.244.70.0/24")}, InternalIPs: []netip.Addr{c.pods[0].IP(false)}},
		{Name: "hostile-tunnel-loopback", PodCIDRs: []netip.Prefix{p("10.244.71.0/24")}, InternalIPs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}},
		{Name: "hostile-tunnel-copy", PodCIDRs: []netip.Prefix{p("10.244.72.0/24")}, InternalIPs: []netip.Addr{c.nodes[2].IPv4()}},
	}
	for _, s := range hostile {
		if err := lab.CreateNode(ctx, c.cs, s); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.deleteNode(t, s.Name) })
	}
	for _, n := range c.nodes[:2] {
		waitFor(t, routeDeadline, n.Name+" refuses the hostile tunnel endpoints", func() error {
			var errs []error
			for _, s := range hostile {
				errs = append(errs, oneEvent(ctx, c, n.Name, "PodCIDRRejected", s.Name, s.PodCIDRs[0].String()))
			}
			return errors.Join(errs...)
		})
	}
	time.Sleep(time.Second) // nothing may be added meanwhile either
	for _, n := range c.nodes {
		if err := c.sameTunnels(ctx, n); err != nil {
			t.Error(err)
		}
	}
	for _, s := range hostile {
		c.deleteNode(t, s.Name)
	}
}

// testNodeMoved: node 2 moves to subnet 1 and its Node's InternalIPs
// follow: node 1 now tunnels to it (the old entry, if any, gone), node 3
// routes to it the host-gw way and drops its entry, and pods still reach
// each other with their own addresses.
func testNodeMoved(t *testing.T, c *cluster) {
	ctx := context.Background()
	n2 := c.nodes[1]
	if err := n2.MoveTo(ctx, 1); err != nil {
		t.Fatal(err)
	}
	spec := twoSubnetSpec(2, 1)
	setInternalIPs(t, c, spec)
	c.waitTunnels(t, "node 2 moved to subnet 1")
	for _, pair := range [][2]int{{0, 1}, {1, 0}, {1, 2}, {2, 1}} {
		assertNoNAT(t, c.pods[pair[0]], c.pods[pair[1]], false)
		assertNoNAT(t, c.pods[pair[0]], c.pods[pair[1]], true)
	}
}

// setInternalIPs updates a Node's InternalIPs, as its kubelet would.
func setInternalIPs(t *testing.T, c *cluster, spec lab.NodeSpec) {
	t.Helper()
	ctx := context.Background()
	n, err := c.cs.CoreV1().Nodes().Get(ctx, spec.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Status.Addresses = nil
	for _, ip := range spec.InternalIPs {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip.String()})
	}
	if _, err := c.cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.specs[spec.Name] = spec
}

// testStalePeerAfterRestart: a Node in the other subnet is deleted while
// node 1's agent is down; the restarted agent drops its route and entries
// and the traffic of the pods across the tunnel is never interrupted by the
// restart itself.
func testStalePeerAfterRestart(t *testing.T, c *cluster) {
	ctx := context.Background()
	s := lab.NodeSpec{Name: "lab-far", PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.9.0/24"), netip.MustParsePrefix("fd00:10:244:9::/64")},
		InternalIPs: []netip.Addr{lab.NodeIPv4In(9, 1), lab.NodeIPv6In(9, 1)}}
	c.createNode(t, ctx, s)
	c.waitTunnels(t, "lab-far added")
	n1 := c.nodes[0]
	if err := n1.StopAgent(); err != nil {
		t.Fatal(err)
	}
	assertNoNAT(t, c.pods[0], c.pods[2], false) // the kernel state outlives the agent
	c.deleteNode(t, s.Name)
	if err := n1.StartAgent(append(agentFlags(), "--ipmasq-backend=nftables")...); err != nil {
		t.Fatal(err)
	}
	waitReady(t, n1)
	c.waitTunnels(t, "lab-far deleted while an agent was down")
}

// testHostGWUnreachable: node 1's agent restarted with --backend=host-gw
// cannot reach node 2 and 3 (now in the other subnet): /readyz says so and
// the Node's NetworkUnavailable is True; back with auto, all is well.
func testHostGWUnreachable(t *testing.T, c *cluster) {
	ctx := context.Background()
	n1 := c.nodes[0]
	if err := n1.StopAgent(); err != nil {
		t.Fatal(err)
	}
	if err := n1.StartAgent(append(agentFlags(), "--ipmasq-backend=nftables", "--backend=host-gw")...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, routeDeadline, "node 1 unready with host-gw", func() error {
		code, body, err := n1.Get(ctx, "/readyz")
		if err != nil {
			return err
		}
		if code == 200 || !strings.Contains(body, "not on-link") {
			return fmt.Errorf("/readyz: %d %s", code, body)
		}
		cond, err := lab.NetworkCondition(ctx, c.cs, n1.Name)
		if err != nil {
			return err
		}
		if cond == nil || cond.Status != corev1.ConditionTrue || cond.Reason != "NodebridgePeersUnreachable" || !strings.Contains(cond.Message, "lab-node-3") {
			return fmt.Errorf("NetworkUnavailable: %+v", cond)
		}
		return nil
	})
	restartAgent(t, n1, append(agentFlags(), "--ipmasq-backend=nftables")...)
	waitReady(t, n1)
	waitFor(t, routeDeadline, "NetworkUnavailable False again", func() error { return c.checkCondition(ctx, n1.Name) })
	c.waitTunnels(t, "back to auto")
}
