// Package rules installs nodebridge's per-network masquerade and FORWARD
// rules. The number of rules depends on the network's subnets and
// non-masquerade prefixes, never on its number of pods. It imports no CNI
// package and takes net/netip values.
package rules

import (
	"context"
	"errors"
	"net/netip"
)

// ErrMissing marks a CheckNetwork finding: a chain, jump or rule is absent or differs.
var ErrMissing = errors.New("rules missing")

// Network is what the rules of one CNI network are built from.
type Network struct {
	Name    string         // CNI network name; validated by the caller ([A-Za-z0-9_.-]+)
	Subnets []netip.Prefix // masked pod subnets, either family
	// NonMasquerade are destinations, either family, that pod traffic
	// reaches with its pod source address, as it does the network's own
	// subnets: the other nodes' pod subnets of a cluster, say. A /0
	// (0.0.0.0/0, ::/0) is every destination of its family: that family's
	// pod traffic is never masqueraded, though the rules stay in place.
	// iptables renders it as a RETURN without -d, as iptables-save prints
	// it; nftables as a RETURN matching only the family (meta nfproto).
	NonMasquerade []netip.Prefix
}

// Backend installs the per-network NAT and FORWARD rules.
type Backend interface {
	// EnsureNetwork makes the network's rules exactly as rendered, creating or repairing them.
	EnsureNetwork(ctx context.Context, n Network) error
	// DeleteNetwork removes the network's rules; absent rules are not an error.
	DeleteNetwork(ctx context.Context, n Network) error
	// CheckNetwork returns an error wrapping ErrMissing when the rules differ from the rendered ones.
	CheckNetwork(ctx context.Context, n Network) error
}
