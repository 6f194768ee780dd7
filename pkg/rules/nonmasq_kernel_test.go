package rules

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// TestKernelNonMasqueradeChange changes a network's NonMasquerade under
// each backend: Ensure rewrites the network's nat chain to match, and
// Check against a list whose exclusion the kernel lacks reports it.
func TestKernelNonMasqueradeChange(t *testing.T) {
	for _, tc := range []struct {
		name    string
		backend func(t *testing.T, node string) Backend
		dump    []string                    // the command listing the backend's rules
		rule    func(p netip.Prefix) string // an exclusion as dump prints it
	}{
		{"iptables", func(t *testing.T, node string) Backend { b, _ := inNS(t, node); return b },
			[]string{"sh", "-c", "iptables-save -t nat; ip6tables-save -t nat"},
			func(p netip.Prefix) string {
				return "-d " + p.String() + ` -m comment --comment "nodebridge: mynet" -j RETURN`
			}},
		{"nftables", func(t *testing.T, node string) Backend { return nftIn(t, node) },
			[]string{"nft", "list", "table", "inet", "nodebridge"},
			func(p netip.Prefix) string { return "daddr " + p.String() + " return" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			node := testenv.NewNS(t, "nmasq")
			b := tc.backend(t, node)
			base := Network{Name: "mynet", Subnets: prefixes("10.22.0.0/16", "fd00:22::/64")}
			v4, both := base, base
			v4.NonMasquerade, both.NonMasquerade = cluster[:1], cluster
			for _, step := range []struct {
				n       Network
				missing string // what Check of both must report, "" for nothing
			}{
				{v4, "fd00:10:244::/56"},
				{both, ""},
				{base, "10.244.0.0/16"},
			} {
				if err := b.EnsureNetwork(t.Context(), step.n); err != nil {
					t.Fatalf("EnsureNetwork with %v: %v", step.n.NonMasquerade, err)
				}
				if err := b.CheckNetwork(t.Context(), step.n); err != nil {
					t.Errorf("CheckNetwork with %v as ensured: %v", step.n.NonMasquerade, err)
				}
				dump := testenv.Run(t, node, tc.dump...)
				for _, p := range cluster {
					if got, want := strings.Contains(dump, tc.rule(p)), slices.Contains(step.n.NonMasquerade, p); got != want {
						t.Errorf("after EnsureNetwork with %v: exclusion of %s present %v, want %v:\n%s", step.n.NonMasquerade, p, got, want, dump)
					}
				}
				err := b.CheckNetwork(t.Context(), both)
				switch {
				case step.missing == "" && err != nil:
					t.Errorf("CheckNetwork with %v after ensuring it: %v", both.NonMasquerade, err)
				case step.missing != "" && (!errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), step.missing)):
					t.Errorf("CheckNetwork with %v after ensuring %v: %v, want ErrMissing naming %s",
						both.NonMasquerade, step.n.NonMasquerade, err, step.missing)
				}
			}
		})
	}
}

// TestKernelNonMasqueradeAll: with 0.0.0.0/0 and ::/0 excluded, each
// backend writes once, finds its rules in place on the next Ensure without
// writing, and Check agrees.
func TestKernelNonMasqueradeAll(t *testing.T) {
	n := Network{Name: "mynet", Subnets: prefixes("10.22.0.0/16", "fd00:22::/64"), NonMasquerade: prefixes("0.0.0.0/0", "::/0")}
	t.Run("iptables", func(t *testing.T) {
		t.Parallel()
		node := testenv.NewNS(t, "nmall")
		b, execs := inNS(t, node)
		ensureTwice(t, b, n)
		before := execs.Load()
		if err := b.EnsureNetwork(t.Context(), n); err != nil {
			t.Fatal(err)
		}
		if got := execs.Load() - before; got != 2 { // one iptables-save per family, no restore
			t.Errorf("EnsureNetwork of rules in place ran %d commands, want 2 saves", got)
		}
		dump := testenv.Run(t, node, "sh", "-c", "iptables-save -t nat; ip6tables-save -t nat")
		if strings.Count(dump, "-A "+myPost+" "+myCmt+" -j RETURN") != 2 {
			t.Errorf("want one RETURN for every destination per family:\n%s", dump)
		}
	})
	t.Run("nftables", func(t *testing.T) {
		t.Parallel()
		node := testenv.NewNS(t, "nmall")
		b := nftIn(t, node)
		ensureTwice(t, b, n)
		gen := nftGen(t, b.nft)
		if err := b.EnsureNetwork(t.Context(), n); err != nil {
			t.Fatal(err)
		}
		if got := nftGen(t, b.nft); got != gen {
			t.Errorf("EnsureNetwork of rules in place committed (generation %d -> %d)", gen, got)
		}
		dump := testenv.Run(t, node, "nft", "list", "table", "inet", "nodebridge")
		for _, want := range []string{"meta nfproto ipv4 return", "meta nfproto ipv6 return"} {
			if !strings.Contains(dump, want) {
				t.Errorf("nft listing lacks %q:\n%s", want, dump)
			}
		}
	})
}

// ensureTwice ensures n twice, then checks it.
func ensureTwice(t *testing.T, b Backend, n Network) {
	t.Helper()
	for range 2 {
		if err := b.EnsureNetwork(t.Context(), n); err != nil {
			t.Fatalf("EnsureNetwork: %v", err)
		}
	}
	if err := b.CheckNetwork(t.Context(), n); err != nil {
		t.Errorf("CheckNetwork after EnsureNetwork: %v", err)
	}
}
