package main

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/nodebridge/nodebridge/internal/lab"
)

// TestNodeObject checks that one object serves both: the podCIDR and
// InternalIP the agent reads, and flannel's lease annotations with the
// same address as its public IP.
func TestNodeObject(t *testing.T) {
	tests := []struct {
		i        int
		name, ip string
		cidr     string
	}{
		{0, "scale-0000", lab.NodeIPv4(ownIndex).String(), "10.0.0.0/24"},
		{1, "scale-0001", "198.19.0.2", "10.0.1.0/24"},
		{999, "scale-0999", "198.19.3.250", "10.3.231.0/24"},
	}
	for _, tt := range tests {
		n := nodeObject(tt.i)
		if n.Name != tt.name || n.Spec.PodCIDR != tt.cidr || len(n.Spec.PodCIDRs) != 1 || n.Spec.PodCIDRs[0] != tt.cidr {
			t.Errorf("node %d: name %q podCIDR %q podCIDRs %v, want %q and %q", tt.i, n.Name, n.Spec.PodCIDR, n.Spec.PodCIDRs, tt.name, tt.cidr)
		}
		var internal []string
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				internal = append(internal, a.Address)
			}
		}
		if len(internal) != 1 || internal[0] != tt.ip {
			t.Errorf("node %d: InternalIPs %v, want [%s]", tt.i, internal, tt.ip)
		}
		want := map[string]string{
			"flannel.alpha.coreos.com/public-ip":           tt.ip,
			"flannel.alpha.coreos.com/backend-type":        "host-gw",
			"flannel.alpha.coreos.com/backend-data":        "null",
			"flannel.alpha.coreos.com/kube-subnet-manager": "true",
		}
		if len(n.Annotations) != len(want) {
			t.Errorf("node %d: annotations %v, want %v", tt.i, n.Annotations, want)
		}
		for k, v := range want {
			if n.Annotations[k] != v {
				t.Errorf("node %d: annotation %s = %q, want %q", tt.i, k, n.Annotations[k], v)
			}
		}
		if n.Labels["nodebridge.lab"] != "true" {
			t.Errorf("node %d: labels %v, want the lab's", tt.i, n.Labels)
		}
	}
}
