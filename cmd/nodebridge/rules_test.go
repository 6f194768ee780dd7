package main_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/nodebridge/nodebridge/internal/netnstest"
)

// TestRulesRepairedAfterFlush, under each backend: once verified, a
// network's rules are not read again while no rule of the node changes (the
// ADD says so under NODEBRIDGE_TRACE); an operator's flush changes the
// ruleset, and the next ADD puts the rules back exactly. The node's FORWARD
// policy is DROP, so both backends keep the network's FORWARD chain in
// iptables, which the flush also empties.
func TestRulesRepairedAfterFlush(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"iptables", "nftables"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, podSubnet)
			conf := f.conf("1.1.0")
			conf["ipMasqBackend"] = backend
			add := func() string {
				t.Helper()
				c := f.callFor("ADD", f.newPod(), conf)
				c.Env = []string{"NODEBRIDGE_TRACE=1"}
				o := f.run(c)
				mustResult(t, o, "1.1.0")
				return string(o.Stderr)
			}
			add() // installs the rules
			add() // verifies them and records the stamp
			want := f.allRules()
			if stderr := add(); !strings.Contains(stderr, "unchanged since verified") {
				t.Errorf("third ADD with no rule change re-read the rules; stderr:\n%s", stderr)
			}

			hash := f.chainHash(want)
			netnstest.Run(t, f.node, "iptables", "-w", "-F", "NB-FWD-"+hash)
			if backend == "iptables" {
				netnstest.Run(t, f.node, "iptables", "-w", "-t", "nat", "-F", "NB-POST-"+hash)
			} else {
				netnstest.Run(t, f.node, "nft", "flush", "chain", "inet", "nodebridge", "post-"+hash)
			}
			if stderr := add(); strings.Contains(stderr, "unchanged since verified") {
				t.Errorf("ADD after a flush trusted the old stamp; stderr:\n%s", stderr)
			}
			if got := f.allRules(); !slices.Equal(got, want) {
				t.Errorf("rules after flush and ADD:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// allRules is nbRules and the lines of table inet nodebridge, if any.
func (f *fixture) allRules() []string {
	f.t.Helper()
	lines := f.nbRules()
	if !strings.Contains(netnstest.Run(f.t, f.node, "nft", "list", "tables"), "table inet nodebridge") {
		return lines
	}
	for l := range strings.Lines(netnstest.Run(f.t, f.node, "nft", "list", "table", "inet", "nodebridge")) {
		lines = append(lines, "nft: "+strings.TrimSpace(l))
	}
	return lines
}

// chainHash is the <hash> of the network's chain names, read from the
// NB-FWD chain that rules holds under FORWARD DROP.
func (f *fixture) chainHash(rules []string) string {
	f.t.Helper()
	for _, l := range rules {
		if _, c, ok := strings.Cut(l, ":NB-FWD-"); ok {
			return strings.Fields(c)[0]
		}
	}
	f.t.Fatalf("no NB-FWD chain in %v", rules)
	return ""
}
