package main_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nodebridge/nodebridge/internal/lab"
)

// agentProto is the route protocol number the agent marks its routes with.
const agentProto = "78"

// kernelRoutes lists the node's routes of the agent's protocol in the main
// table, both families, as "dst via gateway dev link" lines, sorted.
func kernelRoutes(ctx context.Context, n *lab.Node) ([]string, error) {
	var lines []string
	for _, fam := range []string{"-4", "-6"} {
		out, err := n.Exec(ctx, "ip", "-j", fam, "route", "show", "proto", agentProto)
		if err != nil {
			return nil, err
		}
		var rs []struct {
			Dst     string   `json:"dst"`
			Gateway string   `json:"gateway"`
			Dev     string   `json:"dev"`
			Flags   []string `json:"flags"`
		}
		if err := json.Unmarshal([]byte(out), &rs); err != nil {
			return nil, fmt.Errorf("decode ip -j route of %s: %w: %s", n.Name, err, out)
		}
		for _, r := range rs {
			l := fmt.Sprintf("%s via %s dev %s", r.Dst, r.Gateway, r.Dev)
			if slices.Contains(r.Flags, "onlink") {
				l += " onlink"
			}
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	return lines, nil
}

// wantRoutes is what n should have (every agent runs --backend=auto): a
// route to each podCIDR of every other Node object, via that Node's
// InternalIP of the family out of eth0 (the lab nodes' uplink) when it is
// on n's subnet, else via the first address of the podCIDR, onlink
// through the family's VXLAN device.
func (c *cluster) wantRoutes(n *lab.Node) []string {
	var lines []string
	own := c.specs[n.Name]
	for name, s := range c.specs {
		if name == n.Name {
			continue
		}
		for _, p := range s.PodCIDRs {
			for _, ip := range s.InternalIPs {
				switch {
				case ip.Is4() != p.Addr().Is4():
				case onSubnet(own, ip):
					lines = append(lines, fmt.Sprintf("%s via %s dev eth0", p, ip))
				case p.Addr().Is4():
					lines = append(lines, fmt.Sprintf("%s via %s dev nb.vxlan onlink", p, p.Addr()))
				default:
					lines = append(lines, fmt.Sprintf("%s via %s dev nb.vxlan6 onlink", p, p.Addr()))
				}
			}
		}
	}
	sort.Strings(lines)
	return lines
}

// onSubnet reports whether ip is on the lab subnet (a /24 or /64) of one
// of own's InternalIPs.
func onSubnet(own lab.NodeSpec, ip netip.Addr) bool {
	bits := 24
	if ip.Is6() {
		bits = 64
	}
	for _, a := range own.InternalIPs {
		if a.Is4() == ip.Is4() && a != ip && netip.PrefixFrom(a, bits).Masked().Contains(ip) {
			return true
		}
	}
	return false
}

// waitRoutes waits until every node of nodes has exactly the routes the
// current Node objects call for, and logs how long that took.
func (c *cluster) waitRoutes(t *testing.T, what string, timeout time.Duration, nodes ...*lab.Node) {
	t.Helper()
	for _, n := range nodes {
		want := c.wantRoutes(n)
		d := waitFor(t, timeout, what+": routes of "+n.Name, func() error {
			return sameRoutes(context.Background(), n, want)
		})
		t.Logf("%s: routes of %s in place after %v", what, n.Name, d.Round(time.Millisecond))
	}
}

// sameRoutes compares n's agent routes with want.
func sameRoutes(ctx context.Context, n *lab.Node, want []string) error {
	got, err := kernelRoutes(ctx, n)
	if err != nil {
		return err
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		return fmt.Errorf("routes of %s:\n  got  %q\n  want %q", n.Name, got, want)
	}
	return nil
}

// extraSpec is a Node object for index i with no node netns behind it: its
// routes can be installed (the gateway is on-link) though nothing answers.
func extraSpec(name string, i int) lab.NodeSpec {
	return lab.NodeSpec{
		Name: name,
		PodCIDRs: []netip.Prefix{
			netip.MustParsePrefix(fmt.Sprintf("10.244.%d.0/24", i)),
			netip.MustParsePrefix(fmt.Sprintf("fd00:10:244:%d::/64", i)),
		},
		InternalIPs: []netip.Addr{lab.NodeIPv4(i), lab.NodeIPv6(i)},
	}
}

// testNodeAddedAndDeleted: a fourth node joins (Node object and its own
// agent): every node routes to it and it to every node; its Node object is
// deleted: its routes go from every other node.
func testNodeAddedAndDeleted(t *testing.T, c *cluster) {
	ctx := context.Background()
	n4 := c.addNode(t, ctx, 4, baseSpec(4))
	c.waitRoutes(t, "node 4 added", routeDeadline, c.nodes...)
	waitReady(t, n4)
	c.waitRoutes(t, "node 4 added", routeDeadline, n4)

	c.deleteNode(t, n4.Name)
	c.waitRoutes(t, "node 4 deleted", routeDeadline, c.nodes...)
}

// testRouteDeletedByHand: an operator deletes an agent route in each
// family; the agent puts it back from the netlink event, well before its
// resync period: the routes are whole again, and the agent counts the two
// routes it added back (it may do so before a look could catch them gone).
func testRouteDeletedByHand(t *testing.T, c *cluster) {
	ctx := context.Background()
	n := c.nodes[0]
	before := routeChanges(t, n)
	for _, dst := range baseSpec(2).PodCIDRs {
		if out, err := n.Exec(ctx, "ip", "route", "del", dst.String(), "proto", agentProto); err != nil {
			t.Fatalf("delete route %s by hand: %v\n%s", dst, err, out)
		}
	}
	c.waitRoutes(t, "route deleted by hand", routeDeadline, n)
	waitFor(t, routeDeadline, "the agent counts the two routes it put back", func() error {
		if got := routeChanges(t, n); got != before+2 {
			return fmt.Errorf("route changes %d, want %d", got, before+2)
		}
		return nil
	})
}

// routeChanges reads n's nodebridge_agent_route_changes_total.
func routeChanges(t *testing.T, n *lab.Node) int {
	t.Helper()
	_, text, err := n.Get(context.Background(), "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	v, err := metricValue(text, "nodebridge_agent_route_changes_total")
	if err != nil {
		t.Fatal(err)
	}
	i, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("nodebridge_agent_route_changes_total %q: %v", v, err)
	}
	return i
}

// testStaleRouteAfterAgentRestart: the agent of node 1 is killed, a Node is
// deleted meanwhile (its route stays on node 1, nobody being there to
// remove it), and the restarted agent removes the stale route at start-up.
func testStaleRouteAfterAgentRestart(t *testing.T, c *cluster) {
	ctx := context.Background()
	c.createNode(t, ctx, extraSpec("lab-stale", 9))
	c.waitRoutes(t, "node lab-stale added", routeDeadline, c.nodes...)

	n := c.nodes[0]
	withStale := c.wantRoutes(n)
	n.KillAgent()
	c.deleteNode(t, "lab-stale")
	c.waitRoutes(t, "lab-stale deleted", routeDeadline, c.nodes[1:]...)
	if err := sameRoutes(ctx, n, withStale); err != nil {
		t.Fatalf("with its agent dead, node 1's routes changed anyway: %v", err)
	}

	if err := n.StartAgent(agentFlags()...); err != nil {
		t.Fatal(err)
	}
	c.waitRoutes(t, "agent restarted", routeDeadline, n)
	waitReady(t, n)
}

// testAPIServerRestart: etcd and the API server are killed. The agents
// carry on: for a few of client-go's reconnect attempts (a refused watch is
// retried every 0.8 s and up), every route stays and pods still reach each
// other across nodes. Once the control plane is back, a Node added and
// deleted reaches every agent (each one's watch reconnected).
func testAPIServerRestart(t *testing.T, c *cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c.lab.KillControlPlane()
	restarted := false
	t.Cleanup(func() {
		if !restarted { // leave the next scenario a control plane
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := c.lab.StartControlPlane(ctx); err != nil {
				t.Errorf("restart control plane: %v", err)
			}
		}
	})
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); <-tick.C {
		for _, n := range c.nodes {
			if err := sameRoutes(ctx, n, c.wantRoutes(n)); err != nil {
				t.Fatalf("control plane down: %v", err)
			}
		}
	}
	assertNoNAT(t, c.pods[0], c.pods[1], false)
	assertNoNAT(t, c.pods[2], c.pods[0], true)

	if err := c.lab.StartControlPlane(ctx); err != nil {
		t.Fatalf("restart control plane: %v", err)
	}
	restarted = true
	for _, n := range c.nodes {
		if err := sameRoutes(ctx, n, c.wantRoutes(n)); err != nil {
			t.Errorf("control plane back: %v", err)
		}
	}
	c.createNode(t, ctx, extraSpec("lab-after-restart", 8))
	// The agents' watches come back with client-go's backoff, up to a
	// few seconds after the API server.
	c.waitRoutes(t, "node added after the restart", 30*time.Second, c.nodes...)
	c.deleteNode(t, "lab-after-restart")
	c.waitRoutes(t, "node deleted after the restart", routeDeadline, c.nodes...)
}

// testOffLinkPeer: a Node whose IPv4 InternalIP is not on-link (the nodes
// reach 203.0.113.0/24 only through their default gateway) and which has no
// IPv6 InternalIP: every agent (--backend=auto) tunnels to its IPv4
// podCIDR through nb.vxlan, with an FDB entry to that address, skips and
// counts the IPv6 one, and stays ready; once it is deleted, the routes,
// the entry and the device go.
func testOffLinkPeer(t *testing.T, c *cluster) {
	ctx := context.Background()
	s := extraSpec("lab-offlink", 7)
	s.InternalIPs = []netip.Addr{netip.MustParseAddr("203.0.113.7")}
	c.createNode(t, ctx, s)
	for _, n := range c.nodes {
		waitFor(t, routeDeadline, n.Name+" tunnels to lab-offlink's IPv4 podCIDR, skips its IPv6 one", func() error {
			return errors.Join(metricIs(n, "nodebridge_agent_peers_skipped", "1"), metricIs(n, "nodebridge_agent_vxlan_peers", "1"),
				sameRoutes(ctx, n, c.wantRoutes(n)))
		})
		if out, err := n.Exec(ctx, "bridge", "fdb", "show", "dev", "nb.vxlan"); err != nil || !strings.Contains(out, "dst 203.0.113.7 self permanent") {
			t.Errorf("fdb of %s: %v %s", n.Name, err, out)
		}
		waitReady(t, n)
	}
	c.deleteNode(t, s.Name)
	for _, n := range c.nodes {
		waitFor(t, routeDeadline, n.Name+" forgets lab-offlink", func() error {
			return errors.Join(metricIs(n, "nodebridge_agent_peers_skipped", "0"), sameRoutes(ctx, n, c.wantRoutes(n)),
				linkGone(ctx, n, "nb.vxlan"))
		})
	}
}

// linkGone checks that n has no link named name.
func linkGone(ctx context.Context, n *lab.Node, name string) error {
	if out, err := n.Exec(ctx, "ip", "link", "show", name); err == nil {
		return fmt.Errorf("%s still has %s: %s", n.Name, name, out)
	}
	return nil
}

// metricIs checks one sample of n's /metrics.
func metricIs(n *lab.Node, name, want string) error {
	_, text, err := n.Get(context.Background(), "/metrics")
	if err != nil {
		return err
	}
	got, err := metricValue(text, name)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("%s = %s, want %s", name, got, want)
	}
	return nil
}
