package rules

import (
	"cmp"
	"context"
	"net/netip"
	"slices"
)

// Direction is the way traffic crosses one of the node's pods, as
// NetworkPolicy's policyTypes name it.
type Direction int

// The directions, indexes of Policy's arrays.
const (
	Ingress Direction = iota // to the pod
	Egress                   // from the pod
)

func (d Direction) String() string {
	if d == Ingress {
		return "ingress"
	}
	return "egress"
}

// Policy is what NetworkPolicy enforcement on a node is built from, as
// addresses and ports only: which of the node's pods are isolated in each
// direction, and the rules letting traffic of isolated pods pass. Traffic
// of an isolated pod in that direction passes only when a Rule matches it
// (or it answers a connection that passed); a pod that is not isolated is
// not filtered at all.
//
// Rules keep pods, peers and ports apart, as the policies name them: a
// rule for 50 pods from 50 peers is one Rule, not 2,500 pairs, and the
// backend groups addresses into classes so that the kernel holds about as
// many objects as there are distinct groups, not pairs.
type Policy struct {
	Isolated [2][]netip.Addr // by Direction: addresses of isolated pods of the node
	Rules    [2][]Rule       // by Direction
}

// Rule lets traffic pass between any of Pods, addresses of the node's
// pods isolated in the rule's direction, and any address in Peers: to the
// pod from the peer (Ingress) or from the pod to the peer (Egress), to any
// of Ports. A pod and a peer pair up only within one family.
type Rule struct {
	Pods  []netip.Addr
	Peers []netip.Prefix
	Ports []Port // none: every protocol and port
}

// Port is a protocol (0: every protocol, and then every port) and a range
// of destination ports (both 0: every port).
type Port struct {
	Proto  uint8
	Lo, Hi uint16
}

// PolicyBackend enforces a node's Policy: nftables, whatever the backend
// of the plugin's rules.
type PolicyBackend interface {
	// EnsurePolicy makes the kernel enforce p, replacing what it enforced
	// before at once, and counts the objects it wrote.
	EnsurePolicy(ctx context.Context, p Policy) (PolicyObjects, error)
	// DeletePolicy lifts enforcement; none in place is not an error.
	DeletePolicy(ctx context.Context) error
	// PolicyHeld counts the objects of the policy in place; none in place
	// counts zero.
	PolicyHeld(ctx context.Context) (PolicyObjects, error)
	// PolicyDrops reads how many packets the policy in place dropped,
	// by Direction, since it was written; none in place counts 0.
	PolicyDrops(ctx context.Context) ([2]uint64, error)
}

// PolicyObjects counts the kernel objects a Policy became.
type PolicyObjects struct {
	Chains, Sets, Elements int
}

var _ PolicyBackend = (*NFTables)(nil)

// The protocols a NetworkPolicy port names.
const (
	ProtoTCP  = 6
	ProtoUDP  = 17
	ProtoSCTP = 132
)

func comparePrefix(a, b netip.Prefix) int {
	return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
}

func comparePort(a, b Port) int {
	return cmp.Or(cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.Lo, b.Lo), cmp.Compare(a.Hi, b.Hi))
}

func compareRule(a, b Rule) int {
	return cmp.Or(slices.CompareFunc(a.Pods, b.Pods, netip.Addr.Compare),
		slices.CompareFunc(a.Peers, b.Peers, comparePrefix), slices.CompareFunc(a.Ports, b.Ports, comparePort))
}

// Normalize sorts every list and drops duplicates and rules without pods
// or peers, so that two Policies built from the same objects compare
// equal, and a backend renders them in one order.
func (p *Policy) Normalize() {
	for d := range p.Rules {
		rs := p.Rules[d][:0]
		for _, r := range p.Rules[d] {
			// Copies: rules may share their lists.
			r.Pods = slices.Compact(slices.SortedFunc(slices.Values(r.Pods), netip.Addr.Compare))
			r.Peers = slices.Compact(slices.SortedFunc(slices.Values(r.Peers), comparePrefix))
			r.Ports = slices.Compact(slices.SortedFunc(slices.Values(r.Ports), comparePort))
			if len(r.Pods) > 0 && len(r.Peers) > 0 {
				rs = append(rs, r)
			}
		}
		slices.SortFunc(rs, compareRule)
		p.Rules[d] = slices.CompactFunc(rs, func(a, b Rule) bool { return compareRule(a, b) == 0 })
		slices.SortFunc(p.Isolated[d], netip.Addr.Compare)
		p.Isolated[d] = slices.Compact(p.Isolated[d])
	}
}
