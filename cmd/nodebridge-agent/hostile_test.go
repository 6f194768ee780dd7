package main_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodebridge/nodebridge/internal/lab"
	"github.com/nodebridge/nodebridge/internal/testenv"
)

// hostileSpecs are Node objects anyone allowed to create a Node or set a
// podCIDR could make, each claiming a prefix no agent may route: beside
// two honest nodes, every one must be refused by both agents. Their
// InternalIPs are on the underlay (on-link), so only the podCIDR rules
// stand between them and a route.
func hostileSpecs() []lab.NodeSpec {
	p := netip.MustParsePrefix
	v4 := func(i int) []netip.Addr { return []netip.Addr{lab.NodeIPv4(i)} }
	v6 := func(i int) []netip.Addr { return []netip.Addr{lab.NodeIPv6(i)} }
	return []lab.NodeSpec{
		{Name: "hostile-half-internet", PodCIDRs: []netip.Prefix{p("128.0.0.0/1")}, InternalIPs: v4(20)},
		{Name: "hostile-default-v4", PodCIDRs: []netip.Prefix{p("0.0.0.0/0")}, InternalIPs: v4(21)},
		{Name: "hostile-default-v6", PodCIDRs: []netip.Prefix{p("::/0")}, InternalIPs: v6(22)},
		// More specific than the nodes' own underlay subnet: API server traffic.
		{Name: "hostile-underlay-v4", PodCIDRs: []netip.Prefix{p("198.18.0.0/25")}, InternalIPs: v4(23)},
		{Name: "hostile-underlay-v6", PodCIDRs: []netip.Prefix{p("fd00:198:18::/65")}, InternalIPs: v6(24)},
		// The default routes' gateway, the underlay host.
		{Name: "hostile-gateway", PodCIDRs: []netip.Prefix{p("198.18.0.1/32")}, InternalIPs: v4(25)},
		// More specific than lab-node-1's podCIDR.
		{Name: "hostile-inside-peer", PodCIDRs: []netip.Prefix{p("10.244.1.0/25")}, InternalIPs: v4(26)},
		// A copy of lab-node-2's podCIDRs from a Node whose name sorts first.
		{Name: "aaa-hostile-copy", PodCIDRs: []netip.Prefix{p("10.244.2.0/24"), p("fd00:10:244:2::/64")},
			InternalIPs: []netip.Addr{lab.NodeIPv4(27), lab.NodeIPv6(27)}},
		// Wider than the cluster CIDR, covering every node's podCIDR.
		{Name: "hostile-wide", PodCIDRs: []netip.Prefix{p("10.0.0.0/8")}, InternalIPs: v4(28)},
		{Name: "hostile-outside", PodCIDRs: []netip.Prefix{p("172.31.0.0/24")}, InternalIPs: v4(29)},
		{Name: "hostile-loopback", PodCIDRs: []netip.Prefix{p("127.0.0.0/8")}, InternalIPs: v4(30)},
		{Name: "hostile-link-local-v6", PodCIDRs: []netip.Prefix{p("fe80::/64")}, InternalIPs: v6(31)},
		// IPv4 in IPv6 clothing: crashed every agent once.
		{Name: "hostile-mapped", PodCIDRs: []netip.Prefix{p("::ffff:10.244.9.0/120")}, InternalIPs: v6(32)},
		// A podCIDR of the cluster, but no address to route it through.
		{Name: "hostile-no-internal-ip", PodCIDRs: []netip.Prefix{p("10.244.60.0/24")}},
	}
}

// TestHostileNodes runs two honest nodes, one agent given --cluster-cidr
// and one discovering the cluster CIDRs from kubeadm's ConfigMap, then
// creates every Node of hostileSpecs. Every node keeps exactly the honest
// routes and its default routes, each agent records a Warning Event per
// refused prefix (once, however many resyncs), stays alive and ready, pods
// still reach each other across nodes, and a pod added afterwards has
// masqueraded egress.
func TestHostileNodes(t *testing.T) {
	testenv.RequireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := startCluster(t, ctx)
	resync := "--resync=2s" // several resyncs within the test: Events must not repeat
	n1 := c.addNodeWith(t, ctx, 1, baseSpec(1), append(agentFlags(), resync)...)
	n2 := c.addNodeWith(t, ctx, 2, baseSpec(2), resync)
	c.nodes = []*lab.Node{n1, n2}
	waitReady(t, n1)
	checkWithoutClusterCIDR(t, c, n2)
	createKubeadmConfig(t, ctx, c, clusterCIDRs)
	waitReady(t, n2)
	c.waitRoutes(t, "honest nodes", routeDeadline, c.nodes...)
	for _, n := range c.nodes {
		c.pods = append(c.pods, addPod(t, ctx, n, "pod-"+n.Name))
	}
	defaults := defaultRoutes(t, c.nodes)

	created := c.createHostile(t, ctx)
	for _, n := range c.nodes {
		waitFor(t, routeDeadline, "agent of "+n.Name+" records an Event per refused prefix", func() error {
			return checkRejectEvents(ctx, c, n, created)
		})
	}
	time.Sleep(5 * time.Second) // two resyncs: nothing may change, no Event may repeat
	for _, n := range c.nodes {
		if err := checkRejectEvents(ctx, c, n, created); err != nil {
			t.Errorf("after two resyncs: %v", err)
		}
		if err := sameRoutes(ctx, n, c.wantRoutes(n)); err != nil {
			t.Errorf("only honest routes: %v", err)
		}
		if err := checkConflist(n, c.specs[n.Name]); err != nil {
			t.Error(err)
		}
		checkAgentRules(t, n)
		checkAlive(t, n)
	}
	if got := defaultRoutes(t, c.nodes); got != defaults {
		t.Errorf("default routes changed:\nbefore %s\nafter  %s", defaults, got)
	}
	for _, v6 := range []bool{false, true} {
		assertNoNAT(t, c.pods[0], c.pods[1], v6)
		assertNoNAT(t, c.pods[1], c.pods[0], v6)
	}
	fresh := addPod(t, ctx, n1, "pod-fresh")
	checkMasqueraded(t, c, fresh, n1)
}

// checkWithoutClusterCIDR: an agent with no --cluster-cidr and no
// kubeadm-config ConfigMap answers /readyz 503, routes nothing, writes no
// conflist and leaves NetworkUnavailable alone.
func checkWithoutClusterCIDR(t *testing.T, c *cluster, n *lab.Node) {
	t.Helper()
	ctx := context.Background()
	var body string
	waitFor(t, 10*time.Second, "agent of "+n.Name+" not ready without cluster CIDRs", func() error {
		code, b, err := n.Get(ctx, "/readyz")
		if err != nil {
			return err
		}
		if body = strings.TrimSpace(b); code != 503 || !strings.Contains(strings.ToLower(body), "cluster cidr") {
			return fmt.Errorf("/readyz: %d %q, want 503 naming the cluster CIDR", code, body)
		}
		return nil
	})
	t.Logf("agent of %s without cluster CIDRs: /readyz %q", n.Name, body)
	time.Sleep(time.Second) // time to do what it must not
	if routes, err := kernelRoutes(ctx, n); err != nil || len(routes) != 0 {
		t.Errorf("routes of %s without cluster CIDRs: %q %v, want none", n.Name, routes, err)
	}
	if _, err := os.Stat(conflistPath(n)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("conflist of %s without cluster CIDRs: %v, want none", n.Name, err)
	}
	if cond, err := lab.NetworkCondition(ctx, c.cs, n.Name); err != nil || cond != nil {
		t.Errorf("NetworkUnavailable of %s without cluster CIDRs: %+v %v, want untouched", n.Name, cond, err)
	}
	if err := metricIs(n, "nodebridge_agent_ready", "0"); err != nil {
		t.Error(err)
	}
}

// createKubeadmConfig writes the ConfigMap kubeadm leaves in kube-system,
// holding the pod subnets, comma-separated for dual stack.
func createKubeadmConfig(t *testing.T, ctx context.Context, c *cluster, cidrs []netip.Prefix) {
	t.Helper()
	var subnets []string
	for _, p := range cidrs {
		subnets = append(subnets, p.String())
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kubeadm-config", Namespace: "kube-system"},
		Data: map[string]string{"ClusterConfiguration": "apiVersion: kubeadm.k8s.io/v1beta4\n" +
			"kind: ClusterConfiguration\nkubernetesVersion: v1.36.3\nnetworking:\n" +
			"  dnsDomain: cluster.local\n  podSubnet: " + strings.Join(subnets, ",") + "\n" +
			"  serviceSubnet: 10.96.0.0/12\n"}}
	if _, err := c.cs.CoreV1().ConfigMaps("kube-system").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create kube-system/kubeadm-config: %v", err)
	}
}

// createHostile creates the Nodes of hostileSpecs, a second after the
// honest ones (a contested prefix stays with the older Node), and returns
// those the API server accepted; each is deleted when t ends.
func (c *cluster) createHostile(t *testing.T, ctx context.Context) []lab.NodeSpec {
	t.Helper()
	time.Sleep(1100 * time.Millisecond) // creation times have a one-second grain
	var created []lab.NodeSpec
	for _, s := range hostileSpecs() {
		err := lab.CreateNode(ctx, c.cs, s)
		if apierrors.IsInvalid(err) {
			t.Logf("the API server refuses %s (%v): nothing to route", s.Name, s.PodCIDRs)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.deleteNode(t, s.Name) })
		created = append(created, s)
	}
	if len(created) < len(hostileSpecs())-1 {
		t.Fatalf("the API server accepted only %d of %d hostile Nodes", len(created), len(hostileSpecs()))
	}
	return created
}

// checkRejectEvents: for every hostile Node, n's agent recorded exactly one
// Warning PodCIDRRejected Event per podCIDR, naming it, counted once.
func checkRejectEvents(ctx context.Context, c *cluster, n *lab.Node, hostile []lab.NodeSpec) error {
	list, err := c.cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "reason=PodCIDRRejected"})
	if err != nil {
		return fmt.Errorf("list Events: %w", err)
	}
	byNode := map[string][]corev1.Event{}
	for _, e := range list.Items {
		if e.Source.Host == n.Name {
			byNode[e.InvolvedObject.Name] = append(byNode[e.InvolvedObject.Name], e)
		}
	}
	var errs []error
	for _, s := range hostile {
		evs := byNode[s.Name]
		if len(evs) != len(s.PodCIDRs) {
			errs = append(errs, fmt.Errorf("%s: %d PodCIDRRejected Events on %s, want %d: %s",
				n.Name, len(evs), s.Name, len(s.PodCIDRs), eventMessages(evs)))
			continue
		}
		for i, e := range evs {
			if e.Type != corev1.EventTypeWarning || e.InvolvedObject.Kind != "Node" || e.Count > 1 ||
				!mentionsPrefix(e.Message, s.PodCIDRs) {
				errs = append(errs, fmt.Errorf("%s: Event %d on %s: type %s, kind %s, count %d, message %q",
					n.Name, i, s.Name, e.Type, e.InvolvedObject.Kind, e.Count, e.Message))
			}
		}
	}
	for name := range byNode {
		if _, honest := c.specs[name]; honest {
			errs = append(errs, fmt.Errorf("%s: PodCIDRRejected on honest node %s: %s", n.Name, name, eventMessages(byNode[name])))
		}
	}
	return errors.Join(errs...)
}

func mentionsPrefix(msg string, ps []netip.Prefix) bool {
	for _, p := range ps {
		if strings.Contains(msg, p.String()) {
			return true
		}
	}
	return false
}

func eventMessages(evs []corev1.Event) string {
	var ms []string
	for _, e := range evs {
		ms = append(ms, fmt.Sprintf("%q (count %d)", e.Message, e.Count))
	}
	sort.Strings(ms)
	return strings.Join(ms, "; ")
}

// defaultRoutes lists every node's default routes, both families.
func defaultRoutes(t *testing.T, nodes []*lab.Node) string {
	t.Helper()
	var sb strings.Builder
	for _, n := range nodes {
		for _, fam := range []string{"-4", "-6"} {
			out, err := n.Exec(context.Background(), "ip", fam, "route", "show", "default")
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&sb, "%s %s: %s; ", n.Name, fam, strings.Join(strings.Fields(out), " "))
		}
	}
	return sb.String()
}

// checkAlive: n's agent still runs and answers /healthz and /readyz.
func checkAlive(t *testing.T, n *lab.Node) {
	t.Helper()
	if done, err := n.Agent().Exited(); done {
		t.Errorf("agent of %s exited: %v\n%s", n.Name, err, tailLines(n.AgentLogs(), 30))
		return
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body, err := n.Get(context.Background(), path); err != nil || code != 200 {
			t.Errorf("%s %s: %d %q %v", n.Name, path, code, body, err)
		}
	}
}

// checkMasqueraded: p reaches the underlay host, outside the cluster CIDRs,
// seen as its node's address of each family.
func checkMasqueraded(t *testing.T, c *cluster, p *lab.Pod, n *lab.Node) {
	t.Helper()
	for _, v6 := range []bool{false, true} {
		dst, want := lab.UnderlayV4, n.IPv4()
		if v6 {
			dst, want = lab.UnderlayV6, n.IPv6()
		}
		var seen netip.Addr
		waitFor(t, 5*time.Second, fmt.Sprintf("%s connects to %s", p.Name, dst), func() error {
			var err error
			seen, err = seenSource(p.Netns, c.lab.Netns, dst)
			return err
		})
		if seen != want {
			t.Errorf("underlay host saw %s's connection come from %s, want its node's %s (masqueraded)", p.Name, seen, want)
		}
	}
}
