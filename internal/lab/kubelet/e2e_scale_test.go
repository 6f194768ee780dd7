package kubelet

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nodebridge/nodebridge/internal/testenv"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// nodeState is what pods leave in a node: IPAM allocations, host veths,
// and the packet-filter rules outside portmap's own chains.
type nodeState struct {
	allocs []string
	veths  []string
	rules  []string
}

// stateOf reads the node's nodeState, sorted.
func stateOf(ctx context.Context, n *Node) (nodeState, error) {
	var s nodeState
	ips, err := n.Allocations()
	if err != nil {
		return s, err
	}
	for _, ip := range ips {
		s.allocs = append(s.allocs, ip.String())
	}
	if s.veths, err = n.Veths(ctx); err != nil {
		return s, err
	}
	rules, err := n.Rules(ctx)
	if err != nil {
		return s, err
	}
	s.rules = slices.DeleteFunc(rules, portmapOwns)
	for _, l := range [][]string{s.allocs, s.veths, s.rules} {
		slices.Sort(l)
	}
	return s, nil
}

// portmapOwns tells portmap's lines, which it keeps as its own business
// (its chains stay once made): its iptables chains and the jumps to them
// start "CNI-", its nftables table is cni_hostport.
func portmapOwns(line string) bool {
	return strings.Contains(line, "CNI-") || strings.Contains(line, "cni_hostport")
}

// ownsMasquerade tells a line of the network's masquerade chain, in
// either backend: iptables' NB-POST-HASH, nftables' table inet nodebridge.
func ownsMasquerade(line string) bool {
	return strings.Contains(line, "NB-POST-") || strings.Contains(line, "inet nodebridge")
}

// diff says how got differs from want, or "" when equal.
func (want nodeState) diff(got nodeState) string {
	var sb strings.Builder
	for _, f := range []struct {
		what      string
		want, got []string
	}{{"allocations", want.allocs, got.allocs}, {"veths", want.veths, got.veths}, {"rules", want.rules, got.rules}} {
		if d := testenv.Diff(f.want, f.got); d != "" {
			fmt.Fprintf(&sb, "%s:\n%s", f.what, d)
		}
	}
	return sb.String()
}

// deploymentLeavesNothing scales a Deployment to 30 replicas, which the
// scheduler spreads over the nodes, waits until all run, each with an
// address of its node's podCIDR and no rule of its own, then scales it to
// zero and waits until every node is back to its state before: no
// allocation, veth or rule left.
func (e *e2e) deploymentLeavesNothing(t *testing.T, ctx context.Context) {
	const replicas = 30
	before := map[string]nodeState{}
	for _, n := range e.c.Nodes {
		s, err := stateOf(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(s.rules, ownsMasquerade) {
			t.Fatalf("the rules listed in %s hold no nodebridge masquerade chain:\n%s", n.Name, strings.Join(s.rules, "\n"))
		}
		before[n.Name] = s
	}
	deps := e.c.Client.AppsV1().Deployments("default")
	if _, err := deps.Create(ctx, scaleDeployment(replicas), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	t.Cleanup(func() {
		// Best effort: scaled to zero already, or the nodes go down next.
		_ = deps.Delete(context.Background(), "scale", metav1.DeleteOptions{})
	})
	t0 := time.Now()
	pods := e.waitScalePods(t, ctx, replicas)
	t.Logf("%d replicas running after %v", replicas, time.Since(t0).Round(time.Millisecond))
	e.checkRunningState(t, ctx, before, e.checkScalePods(t, pods))
	t0 = time.Now()
	scale, err := deps.GetScale(ctx, "scale", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get scale of deployment: %v", err)
	}
	scale.Spec.Replicas = 0
	if _, err := deps.UpdateScale(ctx, "scale", scale, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("scale deployment to 0: %v", err)
	}
	e.waitScalePods(t, ctx, 0)
	for _, n := range e.c.Nodes {
		e.waitNodeState(t, ctx, n, before[n.Name])
	}
	t.Logf("scaled to 0 and every node clean after %v", time.Since(t0).Round(time.Millisecond))
}

// checkRunningState checks each node has one more allocation and veth per
// pod of the Deployment it runs, and not one more rule.
func (e *e2e) checkRunningState(t *testing.T, ctx context.Context, before map[string]nodeState, perNode map[string]int) {
	t.Helper()
	for _, n := range e.c.Nodes {
		s, err := stateOf(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		b := before[n.Name]
		if len(s.allocs)-len(b.allocs) != perNode[n.Name] || len(s.veths)-len(b.veths) != perNode[n.Name] {
			t.Errorf("node %s runs %d more pods but has %d more allocations and %d more veths",
				n.Name, perNode[n.Name], len(s.allocs)-len(b.allocs), len(s.veths)-len(b.veths))
		}
		if d := testenv.Diff(b.rules, s.rules); d != "" {
			t.Errorf("node %s has rules per pod, want rules per network only:\n%s", n.Name, d)
		}
	}
}

// scaleDeployment is the Deployment of the scale step: busybox sleeping,
// no pinning, so the scheduler spreads it.
func scaleDeployment(replicas int32) *appsv1.Deployment {
	zero, no := int64(0), false
	labels := map[string]string{"app": "scale"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "scale"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: &zero,
					AutomountServiceAccountToken:  &no,
					Containers: []corev1.Container{{
						Name: "main", Image: BusyboxImage, ImagePullPolicy: corev1.PullNever,
						Command: []string{"sleep", "3600"},
					}},
				},
			},
		},
	}
}

// waitScalePods polls until exactly want pods of the Deployment exist and
// all run with an IP, and returns them.
func (e *e2e) waitScalePods(t *testing.T, ctx context.Context, want int) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	ctx, cancel := context.WithTimeout(ctx, 150*time.Second)
	defer cancel()
	err := poll(ctx, 500*time.Millisecond, func() error {
		l, err := e.c.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=scale"})
		if err != nil {
			return err
		}
		pods = l.Items
		running := 0
		for _, p := range pods {
			if p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" && p.DeletionTimestamp == nil {
				running++
			}
		}
		if len(pods) != want || running != want {
			return fmt.Errorf("%d pods of deployment scale, %d running with an IP; want %d", len(pods), running, want)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("wait for deployment scale at %d: %v", want, err)
	}
	return pods
}

// checkScalePods checks each pod's IP is in its node's podCIDR and unique,
// and that every node got some; it returns the count per node.
func (e *e2e) checkScalePods(t *testing.T, pods []corev1.Pod) map[string]int {
	t.Helper()
	perNode := map[string]int{}
	seen := map[netip.Addr]string{}
	for _, p := range pods {
		ip, err := netip.ParseAddr(p.Status.PodIP)
		if err != nil || !e.cidrs[p.Spec.NodeName].Contains(ip) {
			t.Errorf("pod %s on %q has IP %q: want one of the node's podCIDR %v", p.Name, p.Spec.NodeName, p.Status.PodIP, e.cidrs[p.Spec.NodeName])
		}
		if other, ok := seen[ip]; ok {
			t.Errorf("pods %s and %s share IP %v", other, p.Name, ip)
		}
		seen[ip] = p.Name
		perNode[p.Spec.NodeName]++
	}
	for _, n := range e.c.Nodes {
		if perNode[n.Name] == 0 {
			t.Errorf("the scheduler placed none of %d pods on %s: %v", len(pods), n.Name, perNode)
		}
	}
	t.Logf("pods per node: %v", perNode)
	return perNode
}

// waitNodeState polls the node until its state is want.
func (e *e2e) waitNodeState(t *testing.T, ctx context.Context, n *Node, want nodeState) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	err := poll(ctx, 500*time.Millisecond, func() error {
		got, err := stateOf(ctx, n)
		if err != nil {
			return err
		}
		if d := want.diff(got); d != "" {
			return fmt.Errorf("%s differs from before the deployment (-before +now):\n%s", n.Name, d)
		}
		return nil
	})
	if err != nil {
		t.Errorf("wait for %s to be as before the deployment: %v", n.Name, err)
	}
}
