package main_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/nodebridge/nodebridge/internal/lab"
)

// podObject registers a lab pod with the API server as the kubelet would:
// a Pod on node with labels, its addresses in status.podIPs, Running.
func (c *cluster) podObject(t *testing.T, ctx context.Context, p *lab.Pod, node string, labels map[string]string) {
	t.Helper()
	zero := int64(0)
	obj := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: "default", Labels: labels},
		Spec: corev1.PodSpec{NodeName: node, TerminationGracePeriodSeconds: &zero,
			Containers: []corev1.Container{{Name: "c", Image: "none", Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 8080}}}}}}
	got, err := c.cs.CoreV1().Pods("default").Create(ctx, obj, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod object %s: %v", p.Name, err)
	}
	t.Cleanup(func() {
		_ = c.cs.CoreV1().Pods("default").Delete(context.Background(), p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	})
	got.Status.Phase = corev1.PodRunning
	for _, ip := range p.IPs {
		got.Status.PodIPs = append(got.Status.PodIPs, corev1.PodIP{IP: ip.String()})
	}
	got.Status.PodIP = got.Status.PodIPs[0].IP
	if _, err := c.cs.CoreV1().Pods("default").UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("set status of pod object %s: %v", p.Name, err)
	}
}

// ensureServiceAccount makes default/default, which pod admission wants
// and no controller-manager makes here.
func (c *cluster) ensureServiceAccount(t *testing.T, ctx context.Context) {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "default"}}
	if _, err := c.cs.CoreV1().ServiceAccounts("default").Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// reaches reports whether a connects to b's address of the family on an
// unnamed port, within a second.
func reaches(a, b *lab.Pod, v6 bool) bool { return reachesPort(a, b, v6, 0) }

// reachesPort is reaches on port (0: any free one).
func reachesPort(a, b *lab.Pod, v6 bool, port int) bool {
	return reachesAddr(a.Netns, b.Netns, b.IP(v6), port)
}

// testNetworkPolicy: pods on node 1 and node 2, and a second pod on node 1
// (same bridge), registered as Pod objects; a default-deny ingress policy
// isolates node 1's server pod from both, both families, while it still
// connects out (the replies pass); a second policy lets app=client in on
// TCP 8080 only, by name; deleting them lifts it.
func testNetworkPolicy(t *testing.T, c *cluster) {
	ctx := context.Background()
	c.ensureServiceAccount(t, ctx)
	server, client := c.pods[0], c.pods[1]
	neighbour := addPod(t, ctx, c.nodes[0], "pod-neighbour") // beside the server, through the bridge
	c.podObject(t, ctx, server, c.nodes[0].Name, map[string]string{"app": "server"})
	c.podObject(t, ctx, client, c.nodes[1].Name, map[string]string{"app": "client"})
	c.podObject(t, ctx, neighbour, c.nodes[0].Name, map[string]string{"app": "neighbour"})
	waitFor(t, routeDeadline, "before any policy", func() error {
		return errors.Join(bothWays(client, server), bothWays(neighbour, server))
	})
	pols := c.cs.NetworkingV1().NetworkPolicies("default")
	deny := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "deny-server"},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "server"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}}
	if _, err := pols.Create(ctx, deny, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pols.Delete(context.Background(), deny.Name, metav1.DeleteOptions{}) })
	start := time.Now()
	waitFor(t, routeDeadline, "default deny enforced on "+c.nodes[0].Name, func() error {
		for _, from := range []*lab.Pod{client, neighbour} {
			for _, v6 := range []bool{false, true} {
				if reaches(from, server, v6) {
					return fmt.Errorf("%s still reaches %s (v6 %v)", from.Name, server.Name, v6)
				}
			}
		}
		return nil
	})
	t.Logf("default deny seen %v after the create (a refused connection takes a second to tell)", time.Since(start).Round(time.Millisecond))
	waitFor(t, routeDeadline, server.Name+", isolated for ingress only, connects out", func() error { return bothWays(server, client) })
	web := intstr.FromString("web")
	tcp := corev1.ProtocolTCP
	allow := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "allow-client"},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "server"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "client"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &web}}}}}}
	if _, err := pols.Create(ctx, allow, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pols.Delete(context.Background(), allow.Name, metav1.DeleteOptions{}) })
	waitFor(t, routeDeadline, "port web (8080) allowed from app=client", func() error {
		// The server's class chain's set holds the client on 8080.
		out, err := c.nodes[0].Exec(ctx, "nft", "list", "table", "inet", "nodebridge-policy")
		if err != nil || !strings.Contains(out, client.IP(false).String()+" . tcp . 8080") {
			return fmt.Errorf("table inet nodebridge-policy: %v %s", err, out)
		}
		return nil
	})
	waitFor(t, routeDeadline, "port web, 8080, open to "+client.Name, func() error {
		if !reachesPort(client, server, false, 8080) {
			return fmt.Errorf("%s does not reach %s on 8080", client.Name, server.Name)
		}
		return nil
	})
	if reaches(client, server, false) {
		t.Errorf("%s reaches %s on a port the policy does not name", client.Name, server.Name)
	}
	if reachesPort(neighbour, server, false, 8080) {
		t.Errorf("%s, not app=client, reaches %s on 8080", neighbour.Name, server.Name)
	}
	for _, name := range []string{deny.Name, allow.Name} {
		if err := pols.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, routeDeadline, "policies deleted: open again", func() error {
		return errors.Join(bothWays(client, server), bothWays(neighbour, server))
	})
}

// bothWays reports whether a reaches b over both families.
func bothWays(a, b *lab.Pod) error {
	for _, v6 := range []bool{false, true} {
		if !reaches(a, b, v6) {
			return fmt.Errorf("%s does not reach %s (v6 %v)", a.Name, b.Name, v6)
		}
	}
	return nil
}

// reachesAddr reports whether a TCP connection from netns from opens to
// addr:port (0: any free one), served in netns to, within a second.
func reachesAddr(from, to string, addr netip.Addr, port int) bool {
	ln, err := lab.Listen(to, "tcp", net.JoinHostPort(addr.String(), fmt.Sprint(port)))
	if err != nil {
		return false
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c, err := lab.Dialer(from)(ctx, "tcp", ln.Addr().String())
	if err == nil {
		c.Close()
	}
	return err == nil
}

// testNetworkPolicyEgress: an egress policy on node 2's client allows only
// namespaces labelled probe=yes. Labelling default opens the server on
// node 1 to it, unlabelling closes it again (a Namespace change on the
// real API server); the client's own node is a peer like any other,
// reached once an ipBlock names its address. A killed and restarted agent
// never lets the client out meanwhile, and --network-policy=false lifts
// enforcement (the table goes) until the agent runs with it again.
func testNetworkPolicyEgress(t *testing.T, c *cluster) {
	ctx := context.Background()
	c.ensureServiceAccount(t, ctx)
	server, client, n2 := c.pods[0], c.pods[1], c.nodes[1]
	c.podObject(t, ctx, server, c.nodes[0].Name, map[string]string{"app": "server"})
	c.podObject(t, ctx, client, n2.Name, map[string]string{"app": "client"})
	nss := c.cs.CoreV1().Namespaces()
	label := func(v string) {
		t.Helper()
		patch := `{"metadata":{"labels":{"probe":` + v + `}}}`
		if _, err := nss.Patch(ctx, "default", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_, _ = nss.Patch(context.Background(), "default", types.MergePatchType, []byte(`{"metadata":{"labels":{"probe":null}}}`), metav1.PatchOptions{})
	})
	pols := c.cs.NetworkingV1().NetworkPolicies("default")
	egress := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "client-egress"},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "client"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{
				{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"probe": "yes"}}}}}}}}
	created, err := pols.Create(ctx, egress, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pols.Delete(context.Background(), egress.Name, metav1.DeleteOptions{}) })
	shut := func(what string) {
		t.Helper()
		waitFor(t, routeDeadline, what, func() error {
			for _, v6 := range []bool{false, true} {
				if reaches(client, server, v6) {
					return fmt.Errorf("%s still reaches %s (v6 %v)", client.Name, server.Name, v6)
				}
			}
			return nil
		})
	}
	shut("client's egress isolated")
	if reachesAddr(client.Netns, n2.Netns, n2.IPv4(), 8081) {
		t.Errorf("%s, egress isolated, reaches its node's %s", client.Name, n2.IPv4())
	}
	label(`"yes"`)
	waitFor(t, routeDeadline, "namespace default labelled probe=yes: open", func() error { return bothWays(client, server) })
	label(`null`)
	shut("label removed: shut again")

	// The node's own address, allowed as an ipBlock.
	created.Spec.Egress = append(created.Spec.Egress, networkingv1.NetworkPolicyEgressRule{To: []networkingv1.NetworkPolicyPeer{
		{IPBlock: &networkingv1.IPBlock{CIDR: n2.IPv4().String() + "/32"}}}})
	if _, err := pols.Update(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, routeDeadline, "client reaches its node once an ipBlock names it", func() error {
		if !reachesAddr(client.Netns, n2.Netns, n2.IPv4(), 8081) {
			return fmt.Errorf("%s does not reach %s", client.Name, n2.IPv4())
		}
		return nil
	})

	// A restart opens no window: the table stays while the agent is away.
	n2.KillAgent()
	if reaches(client, server, false) {
		t.Errorf("with node 2's agent killed, %s reaches %s", client.Name, server.Name)
	}
	if err := n2.StartAgent(agentFlags()...); err != nil {
		t.Fatal(err)
	}
	for range 3 { // through the restart: the old table until the new replaces it
		if reaches(client, server, false) {
			t.Errorf("while node 2's agent restarts, %s reaches %s", client.Name, server.Name)
		}
	}
	waitReady(t, n2)
	shut("agent restarted: still shut")

	// --network-policy=false lifts it; back on, it holds again.
	restart := func(flags ...string) {
		t.Helper()
		if err := n2.StopAgent(); err != nil {
			t.Fatal(err)
		}
		if err := n2.StartAgent(append(agentFlags(), flags...)...); err != nil {
			t.Fatal(err)
		}
		waitReady(t, n2)
	}
	restart("--network-policy=false")
	waitFor(t, routeDeadline, "--network-policy=false: open", func() error { return bothWays(client, server) })
	if out, err := n2.Exec(ctx, "nft", "list", "tables"); err != nil || strings.Contains(out, "nodebridge-policy") {
		t.Errorf("--network-policy=false left the table: %v %s", err, out)
	}
	restart()
	shut("--network-policy back on: shut")
}
