package main_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodebridge/nodebridge/internal/lab"
)

// testMigration: what flannel host-gw leaves on a node the agent takes
// over. On the first node, a proto boot route to a new peer's podCIDR via
// that peer's InternalIP is replaced by the agent's; one to another peer's
// podCIDR via another address is left, that podCIDR alone is not routed,
// with a RouteConflict Event on the peer and the foreign-route metric, and
// the node stays ready. Another network's conflist sorting before ours is
// reported (metric, ConflistShadowed Event on the own Node) until removed.
func testMigration(t *testing.T, c *cluster) {
	ctx := context.Background()
	n := c.nodes[0]
	same, other := extraSpec("lab-flannel-same", 8), extraSpec("lab-flannel-other", 9)
	elsewhere := lab.NodeIPv4(50) // on-link, but not lab-flannel-other's
	shadow := filepath.Join(n.ConfDir, "05-flannel.conflist")
	if err := os.WriteFile(shadow, []byte(`{"cniVersion":"1.0.0","name":"cbr0","plugins":[{"type":"flannel"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(shadow) }) // gone already unless the test failed
	for _, argv := range [][]string{
		{"ip", "route", "add", same.PodCIDRs[0].String(), "via", same.InternalIPs[0].String(), "dev", "eth0", "proto", "boot"},
		{"ip", "route", "add", other.PodCIDRs[0].String(), "via", elsewhere.String(), "dev", "eth0", "proto", "boot"},
	} {
		if out, err := n.Exec(ctx, argv...); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, out)
		}
	}
	t.Cleanup(func() { _, _ = n.Exec(ctx, "ip", "route", "del", other.PodCIDRs[0].String(), "proto", "boot") }) // best effort, as above
	for _, s := range []lab.NodeSpec{same, other} {
		c.createNode(t, ctx, s)
	}
	checkForeignRoutes(t, c, n, other)
	for _, ev := range []struct{ reason, node, mentions string }{
		{"RouteConflict", other.Name, other.PodCIDRs[0].String()},
		{"ConflistShadowed", n.Name, "05-flannel.conflist"},
	} {
		waitFor(t, routeDeadline, fmt.Sprintf("a %s Event on %s", ev.reason, ev.node), func() error {
			return oneEvent(ctx, c, n.Name, ev.reason, ev.node, ev.mentions)
		})
	}
	if err := os.Remove(shadow); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Exec(ctx, "ip", "route", "del", other.PodCIDRs[0].String(), "proto", "boot"); err != nil {
		t.Fatal(err)
	}
	c.deleteNode(t, same.Name) // a poke: the agent looks again
	c.waitRoutes(t, "foreign route removed", routeDeadline, c.nodes...)
	for _, m := range []string{`nodebridge_agent_podcidr_rejected{reason="foreign-route"}`, "nodebridge_agent_conflists_shadowing"} {
		waitFor(t, routeDeadline, n.Name+" clears "+m, func() error { return metricIs(n, m, "0") })
	}
	c.deleteNode(t, other.Name)
	c.waitRoutes(t, "migration peers deleted", routeDeadline, c.nodes...)
}

// checkForeignRoutes: n routes every peer but other's IPv4 podCIDR, held
// by the foreign route, which is untouched; the route taken over is proto
// 78 only; the other nodes route everything; every node stays ready.
func checkForeignRoutes(t *testing.T, c *cluster, n *lab.Node, other lab.NodeSpec) {
	t.Helper()
	ctx := context.Background()
	held := fmt.Sprintf("%s via %s dev eth0", other.PodCIDRs[0], other.InternalIPs[0])
	want := slices.DeleteFunc(c.wantRoutes(n), func(r string) bool { return r == held })
	waitFor(t, routeDeadline, n.Name+" routes all but the held podCIDR", func() error { return sameRoutes(ctx, n, want) })
	c.waitRoutes(t, "migration peers added", routeDeadline, c.nodes[1:]...)
	if out, err := n.Exec(ctx, "ip", "route", "show", "proto", "boot", "root", "10.244.0.0/16"); err != nil ||
		strings.TrimSpace(out) != fmt.Sprintf("%s via %s dev eth0", other.PodCIDRs[0], lab.NodeIPv4(50)) {
		t.Errorf("proto boot routes of %s: %q %v, want only the one going elsewhere", n.Name, out, err)
	}
	waitFor(t, routeDeadline, n.Name+" counts the held podCIDR", func() error {
		return metricIs(n, `nodebridge_agent_podcidr_rejected{reason="foreign-route"}`, "1")
	})
	if err := metricIs(n, "nodebridge_agent_conflists_shadowing", "1"); err != nil {
		t.Error(err)
	}
	for _, x := range c.nodes {
		checkAlive(t, x)
		if err := c.checkCondition(ctx, x.Name); err != nil {
			t.Error(err)
		}
	}
}

// oneEvent: the agent of host recorded exactly one Warning Event of reason
// on Node node, mentioning what.
func oneEvent(ctx context.Context, c *cluster, host, reason, node, what string) error {
	list, err := c.cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "reason=" + reason})
	if err != nil {
		return fmt.Errorf("list Events: %w", err)
	}
	var got []corev1.Event
	for _, e := range list.Items {
		if e.Source.Host == host && e.InvolvedObject.Name == node {
			got = append(got, e)
		}
	}
	if len(got) != 1 || got[0].Type != corev1.EventTypeWarning || !strings.Contains(got[0].Message, what) {
		return fmt.Errorf("%s Events by %s on %s: %s; want one Warning naming %s", reason, host, node, eventMessages(got), what)
	}
	return nil
}
