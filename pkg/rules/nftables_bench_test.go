package rules

import (
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// nftBenchNS returns an nftables backend, as Select wires it, programming
// a throwaway netns.
func nftBenchNS(b *testing.B) *nftPrimary {
	b.Helper()
	return nftIn(b, testenv.NewNS(b, "nftb"))
}

// BenchmarkNFTEnsureSteady is the cost of EnsureNetwork once a dual-stack
// network's chains are in place, on a node whose iptables accepts: five
// netlink requests (our chains and their rules, then each family's
// iptables-nft chains), no exec. ADDs pay it only when the ruleset
// generation moved since the rules were last verified (see Stamper).
func BenchmarkNFTEnsureSteady(b *testing.B) {
	nb := nftBenchNS(b)
	n := Network{Name: "bench", Subnets: prefixes("10.22.0.0/16", "fd00:22::/64")}
	if err := nb.EnsureNetwork(b.Context(), n); err != nil {
		b.Fatalf("EnsureNetwork: %v", err)
	}
	for b.Loop() {
		if err := nb.EnsureNetwork(b.Context(), n); err != nil {
			b.Fatalf("EnsureNetwork: %v", err)
		}
	}
}

// BenchmarkNFTDeleteAbsent is what the iptables backend, as Select wires
// it, adds to every ADD: deleting nftables chains that are not there.
func BenchmarkNFTDeleteAbsent(b *testing.B) {
	nb := nftOnlyIn(b, testenv.NewNS(b, "nftb")) // as Select wires it under the iptables backend
	n := Network{Name: "bench"}
	for b.Loop() {
		if err := nb.DeleteNetwork(b.Context(), n); err != nil {
			b.Fatalf("DeleteNetwork: %v", err)
		}
	}
}

// BenchmarkDefaultBackend is the cost of choosing the backend when the
// config names none, on an empty ruleset.
func BenchmarkDefaultBackend(b *testing.B) {
	name := testenv.NewNS(b, "nftb")
	err := ns.WithNetNSPath(testenv.Path(name), func(ns.NetNS) error {
		for b.Loop() {
			if got := DefaultBackend(); got != IPTablesName {
				b.Fatalf("DefaultBackend = %q on an empty ruleset", got)
			}
		}
		return nil
	})
	if err != nil {
		b.Fatalf("enter netns: %v", err)
	}
}
