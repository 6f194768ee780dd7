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
// direction, and the traffic allowed to or from them. Traffic of an
// isolated pod in that direction passes only when an Allow matches it (or
// it answers a connection that passed); a pod that is not isolated is not
// filtered at all.
type Policy struct {
	Isolated [2][]netip.Addr // by Direction: addresses of isolated pods of the node
	Allow    [2][]Allow      // by Direction
}

// PolicyBackend enforces a node's Policy: nftables, whatever the backend
// of the plugin's rules.
type PolicyBackend interface {
	// EnsurePolicy makes the kernel enforce p, replacing what it enforced
	// before at once.
	EnsurePolicy(ctx context.Context, p Policy) error
	// DeletePolicy lifts enforcement; none in place is not an error.
	DeletePolicy(ctx context.Context) error
}

var _ PolicyBackend = (*NFTables)(nil)

// Allow lets traffic between Pod, an address of one of the node's pods,
// and Peer pass: to Pod from Peer (Ingress) or from Pod to Peer (Egress),
// over protocol Proto (0: any) to destination ports PortLo..PortHi (both
// 0: any port). Pod and Peer are of one family.
type Allow struct {
	Pod            netip.Addr
	Peer           netip.Prefix
	Proto          uint8
	PortLo, PortHi uint16
}

// The protocols a NetworkPolicy port names.
const (
	ProtoTCP  = 6
	ProtoUDP  = 17
	ProtoSCTP = 132
)

// compareAllow orders Allows by pod, peer, protocol and ports.
func compareAllow(a, b Allow) int {
	return cmp.Or(a.Pod.Compare(b.Pod), a.Peer.Addr().Compare(b.Peer.Addr()), cmp.Compare(a.Peer.Bits(), b.Peer.Bits()),
		cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.PortLo, b.PortLo), cmp.Compare(a.PortHi, b.PortHi))
}

// Normalize sorts every list and drops duplicates, so that two Policies
// allowing the same traffic for the same pods compare equal, and a backend
// renders them in one order.
func (p *Policy) Normalize() {
	for d := range p.Allow {
		slices.SortFunc(p.Allow[d], compareAllow)
		p.Allow[d] = slices.Compact(p.Allow[d])
		slices.SortFunc(p.Isolated[d], netip.Addr.Compare)
		p.Isolated[d] = slices.Compact(p.Isolated[d])
	}
}
