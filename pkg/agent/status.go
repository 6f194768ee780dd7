package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// The condition the agent sets once the node's pod network is in place.
const (
	conditionReason  = "NodebridgeIsUp"
	conditionMessage = "nodebridge-agent routes are in place"
	// With --backend=host-gw and a peer not on-link: NetworkUnavailable
	// is True, so the node is tainted rather than silently cut off.
	unreachableReason = "NodebridgePeersUnreachable"
)

// condition is the NetworkUnavailable condition the agent sets.
type condition struct {
	status  corev1.ConditionStatus
	reason  string
	message string
}

// conditionUp says the network is in place.
var conditionUp = condition{status: corev1.ConditionFalse, reason: conditionReason, message: conditionMessage}

// conditionPatch is the strategic merge patch of nodes/<name>/status that
// sets NetworkUnavailable to want; conditions merge by type, so the
// kubelet's other conditions stay as they are.
func conditionPatch(want condition, now time.Time) ([]byte, error) {
	c := corev1.NodeCondition{
		Type:               corev1.NodeNetworkUnavailable,
		Status:             want.status,
		Reason:             want.reason,
		Message:            want.message,
		LastTransitionTime: metav1.NewTime(now),
		LastHeartbeatTime:  metav1.NewTime(now),
	}
	patch := map[string]any{"status": map[string]any{"conditions": []corev1.NodeCondition{c}}}
	b, err := json.Marshal(patch)
	if err != nil {
		return nil, fmt.Errorf("encode NetworkUnavailable patch: %w", err)
	}
	return b, nil
}

// statusPatcher sets the condition, once per version of the own Node: a
// cached Node that does not show the condition yet, but has the version
// the last patch was made against, is waiting for the watch to catch up.
type statusPatcher struct {
	client  kubernetes.Interface
	node    string
	patched string // ResourceVersion of the cached Node and reason when last patched
}

// ensure patches the condition to want unless the cached Node n already
// shows it.
// Equivalent to: kubectl patch node NAME --subresource status --type strategic
func (s *statusPatcher) ensure(ctx context.Context, n *corev1.Node, want condition) (bool, error) {
	if hasCondition(n, want) || n.ResourceVersion+"/"+want.reason == s.patched {
		return false, nil
	}
	patch, err := conditionPatch(want, time.Now())
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	_, err = s.client.CoreV1().Nodes().Patch(ctx, s.node, types.StrategicMergePatchType, patch,
		metav1.PatchOptions{FieldManager: "nodebridge-agent"}, "status")
	if err != nil {
		return false, fmt.Errorf("patch nodes/%s/status NetworkUnavailable=%s: %w", s.node, want.status, err)
	}
	s.patched = n.ResourceVersion + "/" + want.reason
	return true, nil
}

// hasCondition reports whether n carries NetworkUnavailable with want's
// status and reason (a new message alone is not worth a patch).
func hasCondition(n *corev1.Node, want condition) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeNetworkUnavailable {
			return c.Status == want.status && c.Reason == want.reason
		}
	}
	return false
}
