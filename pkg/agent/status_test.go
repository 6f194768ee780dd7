package agent

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestConditionPatch(t *testing.T) {
	b, err := conditionPatch(conditionUp, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Status struct{ Conditions []map[string]string }
	}
	if err := json.Unmarshal(b, &p); err != nil || len(p.Status.Conditions) != 1 {
		t.Fatalf("patch %s: %v", b, err)
	}
	c := p.Status.Conditions[0]
	for k, want := range map[string]string{"type": "NetworkUnavailable", "status": "False", "reason": "NodebridgeIsUp",
		"message": "nodebridge-agent routes are in place", "lastTransitionTime": "2026-01-02T03:04:05Z"} {
		if c[k] != want {
			t.Errorf("%s: got %q, want %q", k, c[k], want)
		}
	}
}

// ensure makes no API call when the cached Node already shows the
// condition, or has not moved since the last patch (the client is nil: a
// call would panic). The patch itself is tested against a real API server
// by the multi-node suite.
func TestStatusPatcherSkips(t *testing.T) {
	up := node("a", nil)
	up.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse, Reason: conditionReason}}
	pending := node("a", nil)
	pending.ResourceVersion = "41"
	s := &statusPatcher{node: "a", patched: "41/" + conditionReason}
	for name, n := range map[string]*corev1.Node{"condition set": up, "patch not yet seen": pending} {
		if patched, err := s.ensure(context.Background(), n, conditionUp); patched || err != nil {
			t.Errorf("%s: got patched=%v err=%v", name, patched, err)
		}
	}
	flipped := node("a", nil)
	flipped.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionTrue, Reason: "NoRouteCreated"}}
	if networkUp(flipped) {
		t.Error("a condition flipped to True reads as up")
	}
}
