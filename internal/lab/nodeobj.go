package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// NodeSpec is what a lab Node object says about a node: the pod CIDRs a
// controller-manager would allocate and the InternalIPs a kubelet reports.
type NodeSpec struct {
	Name        string
	PodCIDRs    []netip.Prefix // empty: not assigned yet
	InternalIPs []netip.Addr
}

// Object is the Node object for s, status included: the API server keeps
// a Node's status on create, as a kubelet registering itself relies on.
func (s NodeSpec) Object() *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: s.Name, Labels: map[string]string{"nodebridge.lab": "true"}}}
	for _, p := range s.PodCIDRs {
		n.Spec.PodCIDRs = append(n.Spec.PodCIDRs, p.String())
	}
	if len(n.Spec.PodCIDRs) > 0 {
		n.Spec.PodCIDR = n.Spec.PodCIDRs[0]
	}
	for _, a := range s.InternalIPs {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: a.String()})
	}
	n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeHostName, Address: s.Name})
	return n
}

// CreateNode creates the Node object of s and checks that its addresses
// were stored; if not (an API server that drops status on create), it
// writes them through the status subresource.
func CreateNode(ctx context.Context, cs kubernetes.Interface, s NodeSpec) error {
	want := s.Object()
	got, err := cs.CoreV1().Nodes().Create(ctx, want, metav1.CreateOptions{FieldManager: fieldManager})
	if err != nil {
		return fmt.Errorf("create node %s: %w", s.Name, err)
	}
	if len(got.Status.Addresses) == len(want.Status.Addresses) {
		return nil
	}
	got.Status.Addresses = want.Status.Addresses
	if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, got, metav1.UpdateOptions{FieldManager: fieldManager}); err != nil {
		return fmt.Errorf("set addresses of node %s: %w", s.Name, err)
	}
	return nil
}

// SetPodCIDRs assigns pod CIDRs to a Node that has none, as the
// controller-manager's node IPAM does (the field may be set once).
func SetPodCIDRs(ctx context.Context, cs kubernetes.Interface, name string, cidrs ...netip.Prefix) error {
	var ss []string
	for _, c := range cidrs {
		ss = append(ss, c.String())
	}
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"podCIDR": ss[0], "podCIDRs": ss}})
	if err != nil {
		return fmt.Errorf("encode podCIDRs patch: %w", err)
	}
	if _, err := cs.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("set podCIDRs of node %s: %w", name, err)
	}
	return nil
}

// DeleteNode deletes a Node object; a missing one is not an error.
func DeleteNode(ctx context.Context, cs kubernetes.Interface, name string) error {
	err := cs.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete node %s: %w", name, err)
	}
	return nil
}

// NetworkCondition returns the Node's NetworkUnavailable condition, or nil
// when it has none.
func NetworkCondition(ctx context.Context, cs kubernetes.Interface, name string) (*corev1.NodeCondition, error) {
	n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get node %s: %w", name, err)
	}
	for i, c := range n.Status.Conditions {
		if c.Type == corev1.NodeNetworkUnavailable {
			return &n.Status.Conditions[i], nil
		}
	}
	return nil, nil
}
