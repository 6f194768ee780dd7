package rules

import (
	"context"
	"strings"
	"testing"
)

// A backend in a variant's mode runs only that variant's commands, both
// families', and its stamp and fingerprint follow the variant, not the
// alternatives' iptables-save: legacy changes do not move the nftables
// generation.
func TestIPTablesModeCommands(t *testing.T) {
	for _, mode := range []IPTablesMode{ModeLegacy, ModeNFT} {
		t.Run(string(mode), func(t *testing.T) {
			b := newIPTables(t.Logf, mode)
			var names []string
			b.run = func(_ context.Context, _ []byte, name string, _ ...string) ([]byte, error) {
				names = append(names, name)
				return nil, nil
			}
			for _, cidr := range []string{"10.244.0.0/16", "fd00:10:244::/56"} {
				c := Cluster{Name: "nodebridge", CIDRs: prefixes(cidr)}
				_ = b.EnsureCluster(t.Context(), c) // the recorder saves nothing, so writes never stick: only the names matter
			}
			ran := map[string]bool{}
			for _, n := range names {
				ran[n] = true
			}
			for _, tool := range mode.tools() {
				if !ran[tool] {
					t.Errorf("never ran %s", tool)
				}
				delete(ran, tool)
			}
			if len(ran) != 0 {
				t.Errorf("ran %v, want only %v", ran, mode.tools())
			}
			if st, err := b.Stamp(t.Context()); mode == ModeLegacy && (st != "" || err != nil) {
				t.Errorf("legacy stamp %q, %v: want empty", st, err)
			}
		})
	}
}

// The zero mode runs the commands as installed, as the plugin always has.
func TestIPTablesModeInstalledTools(t *testing.T) {
	got := strings.Join(ModeInstalled.tools(), " ")
	if want := "iptables-save iptables-restore ip6tables-save ip6tables-restore"; got != want {
		t.Errorf("tools %q, want %q", got, want)
	}
}
