package main

import (
	"context"
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// flannelPrefix starts the annotations through which flannel's kube subnet
// manager learns a Node's lease; it routes no Node without them.
const flannelPrefix = "flannel.alpha.coreos.com/"

// flannelAnnotations are what flanneld with the host-gw backend writes on
// its own Node, here for a Node whose underlay address is ip: both the
// agent and flannel get the same objects.
func flannelAnnotations(ip netip.Addr) map[string]string {
	return map[string]string{
		flannelPrefix + "public-ip":           ip.String(),
		flannelPrefix + "backend-type":        "host-gw",
		flannelPrefix + "backend-data":        "null",
		flannelPrefix + "kube-subnet-manager": "true",
	}
}

// nodeObject is the Node object of index i: spec(i) with flannel's
// annotations for its InternalIP.
func nodeObject(i int) *corev1.Node {
	s := spec(i)
	n := s.Object()
	n.Annotations = flannelAnnotations(s.InternalIPs[0])
	return n
}

// createNode creates the Node object of index i, and writes its addresses
// through the status subresource if the create dropped them.
func createNode(ctx context.Context, cs kubernetes.Interface, i int) error {
	want := nodeObject(i)
	got, err := cs.CoreV1().Nodes().Create(ctx, want, metav1.CreateOptions{FieldManager: fieldManager})
	if err != nil {
		return fmt.Errorf("create node %s: %w", want.Name, err)
	}
	if len(got.Status.Addresses) == len(want.Status.Addresses) {
		return nil
	}
	got.Status.Addresses = want.Status.Addresses
	if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, got, metav1.UpdateOptions{FieldManager: fieldManager}); err != nil {
		return fmt.Errorf("set addresses of node %s: %w", want.Name, err)
	}
	return nil
}

// fieldManager names this program in the Node objects' managedFields.
const fieldManager = "nodebridge-agentscale"
