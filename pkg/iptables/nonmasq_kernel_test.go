package iptables

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/nodebridge/nodebridge/internal/netnstest"
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
			node := netnstest.NewNS(t, "nmasq")
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
				dump := netnstest.Run(t, node, tc.dump...)
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
