package agent

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// The cache pokes on changes that matter and stores slimmed Nodes.
func TestNodeCache(t *testing.T) {
	pokes := 0
	c := newNodeCache("a", func() { pokes++ })
	full := node("b", []string{"10.244.1.0/24"}, "198.18.0.12")
	full.Labels = map[string]string{"x": "y"}
	full.Status.Images = []corev1.ContainerImage{{Names: []string{"big"}}}
	full.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	steps := []struct {
		name      string
		do        func() error
		wantPokes int
	}{
		{"initial list", func() error { return c.Replace([]any{full, node("a", []string{"10.244.0.0/24"}, "198.18.0.11")}, "1") }, 1},
		{"heartbeat of b", func() error { hb := full.DeepCopy(); hb.ResourceVersion = "2"; return c.Update(hb) }, 1},
		{"b's InternalIP changed", func() error { return c.Update(node("b", []string{"10.244.1.0/24"}, "198.18.0.22")) }, 2},
		{"own condition set", func() error {
			n := node("a", []string{"10.244.0.0/24"}, "198.18.0.11")
			n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse, Reason: conditionReason}}
			return c.Update(n)
		}, 3},
		{"c added", func() error { return c.Add(node("c", nil)) }, 4},
		{"c deleted", func() error { return c.Delete(node("c", nil)) }, 5},
	}
	for _, s := range steps {
		if err := s.do(); err != nil || pokes != s.wantPokes {
			t.Fatalf("%s: pokes %d err %v, want %d pokes", s.name, pokes, err, s.wantPokes)
		}
	}
	select {
	case <-c.synced:
	default:
		t.Error("not synced after the initial list")
	}
	nodes, _ := c.list()
	if len(nodes) != 2 {
		t.Fatalf("got %d Nodes, want 2", len(nodes))
	}
	for _, n := range nodes {
		if n.Labels != nil || n.Status.Images != nil || len(n.Spec.PodCIDRs) != 1 || len(n.Status.Addresses) != 1 {
			t.Errorf("%s not slimmed to podCIDRs and addresses: %+v", n.Name, n)
		}
		if n.Name == "b" && len(n.Status.Conditions) != 0 {
			t.Errorf("b keeps a condition other than NetworkUnavailable: %v", n.Status.Conditions)
		}
	}
}
