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
)

// conditionPatch is the strategic merge patch of nodes/<name>/status that
// sets NetworkUnavailable=False; conditions merge by type, so the kubelet's
// other conditions stay as they are.
func conditionPatch(now time.Time) ([]byte, error) {
	c := corev1.NodeCondition{
		Type:               corev1.NodeNetworkUnavailable,
		Status:             corev1.ConditionFalse,
		Reason:             conditionReason,
		Message:            conditionMessage,
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
	patched string // ResourceVersion of the cached Node when last patched
}

// ensure patches the condition unless the cached Node n already shows it.
// Equivalent to: kubectl patch node NAME --subresource status --type strategic
func (s *statusPatcher) ensure(ctx context.Context, n *corev1.Node) (bool, error) {
	if networkUp(n) || n.ResourceVersion == s.patched {
		return false, nil
	}
	patch, err := conditionPatch(time.Now())
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	_, err = s.client.CoreV1().Nodes().Patch(ctx, s.node, types.StrategicMergePatchType, patch,
		metav1.PatchOptions{FieldManager: "nodebridge-agent"}, "status")
	if err != nil {
		return false, fmt.Errorf("patch nodes/%s/status NetworkUnavailable=False: %w", s.node, err)
	}
	s.patched = n.ResourceVersion
	return true, nil
}
