package rules

import (
	"errors"
	"fmt"
	"testing"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// TestKernelSwitchBackend switches one network with live rules from
// iptables to nftables and back, as Select wires the backends, on a node
// whose FORWARD chains accept and on one whose FORWARD policy is DROP. Each
// switch must leave one masquerade; the nftables backend keeps iptables'
// FORWARD chain of the network exactly where iptables drops. The nftables
// steady state must not write, nor exec where iptables accepts.
func TestKernelSwitchBackend(t *testing.T) {
	for _, tc := range []struct {
		name  string
		drop  bool
		execs int32 // of a steady-state nftables EnsureNetwork
	}{
		{"forward accepts", false, 0},
		{"forward policy drop", true, 2}, // one save per family, no restore
	} {
		t.Run(tc.name, func(t *testing.T) {
			node := testenv.NewNS(t, "switch")
			if tc.drop {
				testenv.Run(t, node, "iptables", "-w", "-P", "FORWARD", "DROP")
				testenv.Run(t, node, "ip6tables", "-w", "-P", "FORWARD", "DROP")
			}
			n := Network{Name: "mynet", Subnets: prefixes("10.22.0.0/16", "fd00:22::/64")}
			ipt, execs := inNS(t, node)
			viaIPT := &iptPrimary{ipt: ipt, nft: nftOnlyIn(t, node)}
			viaNFT := nftIn(t, node)
			viaNFT.ipt = ipt
			ctx := t.Context()
			iptOnly := func(what string) {
				t.Helper()
				for _, rs := range Rules(n) {
					sameLines(t, what, ourLines(t, node, rs.IPv6), wantLines(rs))
				}
				sameListing(t, what, nftListing(t, node), nil)
			}

			if err := viaIPT.EnsureNetwork(ctx, n); err != nil {
				t.Fatalf("iptables EnsureNetwork: %v", err)
			}
			iptOnly("iptables first")

			if err := viaNFT.EnsureNetwork(ctx, n); err != nil {
				t.Fatalf("nftables EnsureNetwork after iptables: %v", err)
			}
			if err := viaNFT.CheckNetwork(ctx, n); err != nil {
				t.Errorf("nftables CheckNetwork after the switch: %v", err)
			}
			for _, rs := range Rules(n) {
				sameLines(t, "after switching to nftables", ourLines(t, node, rs.IPv6), wantLines(forwardOnly(rs, tc.drop)))
			}
			execs.Store(0)
			gen := nftGen(t, viaNFT.nft)
			if err := viaNFT.EnsureNetwork(ctx, n); err != nil {
				t.Fatalf("second nftables EnsureNetwork: %v", err)
			}
			if got, now := execs.Load(), nftGen(t, viaNFT.nft); got != tc.execs || now != gen {
				t.Errorf("steady-state nftables EnsureNetwork ran %d commands and moved the generation %d -> %d, want %d and none",
					got, gen, now, tc.execs)
			}

			if err := viaIPT.EnsureNetwork(ctx, n); err != nil {
				t.Fatalf("iptables EnsureNetwork after nftables: %v", err)
			}
			iptOnly("after switching back to iptables")

			testDeleteBoth(t, node, n, ipt, []Backend{viaNFT, viaIPT})
		})
	}
}

// testDeleteBoth installs both sets of n's rules, as a binary that knew one
// backend only might leave them, and checks that each of dels removes both.
func testDeleteBoth(t *testing.T, node string, n Network, ipt *IPTables, dels []Backend) {
	t.Helper()
	plain := nftOnlyIn(t, node)
	for _, b := range dels {
		if err := errors.Join(ipt.EnsureNetwork(t.Context(), n), plain.EnsureNetwork(t.Context(), n)); err != nil {
			t.Fatalf("EnsureNetwork of both: %v", err)
		}
		if err := b.DeleteNetwork(t.Context(), n); err != nil {
			t.Fatalf("%T DeleteNetwork: %v", b, err)
		}
		for _, v6 := range []bool{false, true} {
			sameLines(t, fmt.Sprintf("after %T DeleteNetwork", b), ourLines(t, node, v6), nil)
		}
		sameListing(t, fmt.Sprintf("after %T DeleteNetwork", b), nftListing(t, node), nil)
	}
}
