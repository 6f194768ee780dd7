// Package rules installs nodebridge's per-network masquerade and FORWARD
// rules. The number of rules depends on the network's subnets and
// non-masquerade prefixes, never on its number of pods. It imports no CNI
// package and takes net/netip values.
package rules

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"
)

// ErrMissing marks a CheckNetwork finding: a chain, jump or rule is absent or differs.
var ErrMissing = errors.New("rules missing")

// Network is what the rules of one CNI network are built from.
type Network struct {
	Name    string         // CNI network name; the caller checks it with CheckName
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

// The helpers below serve both backends.

// hasSubnets reports whether n has a subnet of either family, without
// which it has no rules to ensure or check.
func hasSubnets(n Network) bool {
	return len(familySubnets(n.Subnets, false))+len(familySubnets(n.Subnets, true)) > 0
}

// maxWrites bounds the writes (restores of one family, nftables batches) of
// one EnsureNetwork or DeleteNetwork. Production callers serialise a
// network's writers (the IPAM lock), so one write is the rule; the bound
// matters only when processes race for one network. With 8 racing writers on iptables-nft, a bound of 2 failed
// about 1 run in 500, 3 none in 900.
const maxWrites = 3

// Backoff waits up to attempt×5 ms, at random so that racing writers stop
// re-reading and re-writing in lockstep. spoofchk shares it.
func Backoff(ctx context.Context, attempt int) error {
	timer := time.NewTimer(rand.N(time.Duration(attempt) * 5 * time.Millisecond))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-timer.C:
		return nil
	}
}

// exclusions returns n's masked NonMasquerade prefixes of one family, in
// order, less repeats and the network's own subnets, which already keep
// their source address.
func exclusions(n Network, v6 bool) []netip.Prefix {
	own := familySubnets(n.Subnets, v6)
	var out []netip.Prefix
	for _, p := range familySubnets(n.NonMasquerade, v6) {
		if !slices.Contains(own, p) && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// familySubnets returns the masked subnets of one family, in order, because
// iptables prints masked prefixes and an unmasked one would never compare equal.
func familySubnets(all []netip.Prefix, v6 bool) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range all {
		if p.IsValid() && p.Addr().Is6() == v6 {
			out = append(out, p.Masked())
		}
	}
	return out
}

// chainHash keeps chain names within iptables' 28-byte limit whatever the
// network name's length, and stable across calls.
func chainHash(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:])[:10]
}

// finding is one way the installed rules depart from the rendered ones. It
// is an ErrMissing, so callers test for it with errors.Is.
type finding string

func (f finding) Error() string { return string(f) }
func (f finding) Unwrap() error { return ErrMissing }
