package main_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/nodebridge/nodebridge/internal/netnstest"
)

// TestRulesRepairedAfterFlush: once verified, a network's rules are not read
// again while no rule of the node changes (the ADD says so under
// NODEBRIDGE_TRACE); an operator's flush changes the ruleset, and the next
// ADD puts the rules back exactly.
func TestRulesRepairedAfterFlush(t *testing.T) {
	t.Parallel()
	f := newFixture(t, podSubnet)
	f.add(f.newPod()) // installs the rules
	f.add(f.newPod()) // verifies them and records the stamp
	want := f.nbRules()

	trace := f.callFor("ADD", f.newPod(), f.conf("1.1.0"))
	trace.Env = []string{"NODEBRIDGE_TRACE=1"}
	o := f.run(trace)
	mustResult(t, o, "1.1.0")
	if !strings.Contains(string(o.Stderr), "unchanged since verified") {
		t.Errorf("third ADD with no rule change re-read the rules; stderr:\n%s", o.Stderr)
	}

	chain := ""
	for _, l := range want {
		if _, c, ok := strings.Cut(l, ":NB-POST-"); ok {
			chain = "NB-POST-" + strings.Fields(c)[0]
		}
	}
	if chain == "" {
		t.Fatalf("no NB-POST chain in %v", want)
	}
	netnstest.Run(t, f.node, "iptables", "-w", "-t", "nat", "-F", chain)

	again := f.callFor("ADD", f.newPod(), f.conf("1.1.0"))
	again.Env = trace.Env
	o = f.run(again)
	mustResult(t, o, "1.1.0")
	if strings.Contains(string(o.Stderr), "unchanged since verified") {
		t.Errorf("ADD after a flush trusted the old stamp; stderr:\n%s", o.Stderr)
	}
	if got := f.nbRules(); !slices.Equal(got, want) {
		t.Errorf("rules after flush and ADD:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
