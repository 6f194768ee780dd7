package agent

import (
	"net/netip"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// v4 and v6 index the per-family arrays.
const (
	v4 = 0
	v6 = 1
)

// familyOf returns v4 or v6; an IPv4-mapped IPv6 address counts as v4, so
// callers that must refuse mapped prefixes check Is4In6 first.
func familyOf(a netip.Addr) int {
	if a.Is4() || a.Is4In6() {
		return v4
	}
	return v6
}

// familyName names a family index in logs and reasons.
func familyName(f int) string {
	if f == v4 {
		return "IPv4"
	}
	return "IPv6"
}

// nodeInfo is what the agent reads from a Node.
type nodeInfo struct {
	name     string
	uid      types.UID
	created  time.Time      // creationTimestamp: the older Node keeps a contested podCIDR
	podCIDRs []netip.Prefix // masked
	bad      []string       // podCIDRs that do not parse
	ips      [2]netip.Addr  // first InternalIP of each family; invalid when none
}

// readNode extracts the podCIDRs (spec.podCIDRs, else the legacy
// spec.podCIDR) and the InternalIP of each family.
func readNode(n *corev1.Node) nodeInfo {
	ni := nodeInfo{name: n.Name, uid: n.UID, created: n.CreationTimestamp.Time}
	cidrs := n.Spec.PodCIDRs
	if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
		cidrs = []string{n.Spec.PodCIDR}
	}
	for _, s := range cidrs {
		if p, err := netip.ParsePrefix(s); err == nil {
			ni.podCIDRs = append(ni.podCIDRs, p.Masked())
		} else {
			ni.bad = append(ni.bad, s)
		}
	}
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		ip, err := netip.ParseAddr(a.Address)
		if err != nil {
			continue
		}
		ip = ip.Unmap()
		if f := familyOf(ip); !ni.ips[f].IsValid() {
			ni.ips[f] = ip
		}
	}
	return ni
}

// sameRouting reports whether two versions of a Node route the same: a
// kubelet heartbeat or label change does not trigger a reconcile.
func sameRouting(a, b *corev1.Node) bool {
	if a.Spec.PodCIDR != b.Spec.PodCIDR || !slices.Equal(a.Spec.PodCIDRs, b.Spec.PodCIDRs) {
		return false
	}
	return slices.Equal(a.Status.Addresses, b.Status.Addresses)
}

// networkUp reports whether n carries the condition the agent sets when ready.
func networkUp(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeNetworkUnavailable {
			return c.Status == corev1.ConditionFalse && c.Reason == conditionReason
		}
	}
	return false
}

// slimNode keeps only what the agent reads, so the informer cache of a
// thousand Nodes stays small (no images, managed fields or labels).
func slimNode(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil // a tombstone: passed through as is
	}
	s := &corev1.Node{}
	s.Name = n.Name
	s.UID = n.UID
	s.CreationTimestamp = n.CreationTimestamp
	s.ResourceVersion = n.ResourceVersion
	s.Spec.PodCIDR = n.Spec.PodCIDR
	s.Spec.PodCIDRs = n.Spec.PodCIDRs
	s.Status.Addresses = n.Status.Addresses
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeNetworkUnavailable {
			s.Status.Conditions = []corev1.NodeCondition{c}
		}
	}
	return s, nil
}
