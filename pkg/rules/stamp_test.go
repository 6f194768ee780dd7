package rules

import (
	"context"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// TestStampFollowsRuleChanges: the stamp stays while nothing changes and
// moves with any rule change in the netns, ours or another tool's.
func TestStampFollowsRuleChanges(t *testing.T) {
	if iptablesVariant() != variantNFT {
		t.Skip("iptables here is not the nf_tables variant: Stamp is always empty")
	}
	name := testenv.NewNS(t, "stamp")
	stamp := func() string {
		t.Helper()
		var s string
		err := ns.WithNetNSPath(testenv.Path(name), func(ns.NetNS) error {
			var err error
			s, err = New(nil).Stamp(context.Background())
			return err
		})
		if err != nil || !strings.HasPrefix(s, "nft ") {
			t.Fatalf("Stamp = %q, %v", s, err)
		}
		return s
	}
	first := stamp()
	if again := stamp(); again != first {
		t.Errorf("stamp moved with no change: %q then %q", first, again)
	}
	testenv.Run(t, name, "iptables", "-w", "-N", "SOMEONE-ELSE")
	changed := stamp()
	if changed == first {
		t.Errorf("stamp %q did not move after another tool added a chain", first)
	}
	testenv.Run(t, name, "iptables", "-w", "-X", "SOMEONE-ELSE")
	if stamp() == changed {
		t.Error("stamp did not move after the chain was removed")
	}
}

// TestNFTStampFollowsRuleChanges: the nftables backend's stamp moves with
// nftables and iptables-nft changes alike, and is empty where it cannot
// vouch for the rules: iptables-legacy, or another netns programmed by fd.
func TestNFTStampFollowsRuleChanges(t *testing.T) {
	name := testenv.NewNS(t, "stamp")
	stampOf := func(b Stamper) string {
		t.Helper()
		var s string
		err := ns.WithNetNSPath(testenv.Path(name), func(ns.NetNS) error {
			var err error
			s, err = b.Stamp(context.Background())
			return err
		})
		if err != nil {
			t.Fatalf("Stamp: %v", err)
		}
		return s
	}
	b := newNFTPrimary(nil, ModeInstalled)
	b.variant = func() string { return variantNFT }
	first := stampOf(b)
	if !strings.HasPrefix(first, "nft ") || stampOf(b) != first {
		t.Fatalf("Stamp = %q, then %q; want a stable nft stamp", first, stampOf(b))
	}
	for _, change := range [][]string{{"nft", "add table inet someone"}, {"iptables", "-w", "-P", "FORWARD", "DROP"}} {
		testenv.Run(t, name, change...)
		if now := stampOf(b); now == first || now == "" {
			t.Errorf("stamp %q after %q, want a new one", now, change)
		} else {
			first = now
		}
	}
	b.variant = func() string { return variantLegacy }
	if s := stampOf(b); s != "" {
		t.Errorf("Stamp with iptables-legacy = %q, want empty", s)
	}
	if s := stampOf(nftIn(t, name)); s != "" {
		t.Errorf("Stamp of a backend programming a netns by fd = %q, want empty", s)
	}
}
