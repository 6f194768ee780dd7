package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// TestRulesRepairedAfterFlush, under each backend: once verified, a
// network's rules are not read again while no rule of the node changes (the
// ADD says so under NODEBRIDGE_TRACE); an operator's flush changes the
// ruleset, and the next ADD puts the rules back exactly, which the rules
// layer reports in the same trace. The node's FORWARD
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
			add := func() string { t.Helper(); return string(f.addTraced(f.newPod(), conf).Stderr) }
			add() // installs the rules
			add() // verifies them and records the stamp
			want := f.allRules()
			if stderr := add(); !strings.Contains(stderr, "unchanged since verified") {
				t.Errorf("third ADD with no rule change re-read the rules; stderr:\n%s", stderr)
			}

			hash := f.chainHash(want)
			testenv.Run(t, f.node, "iptables", "-w", "-F", "NB-FWD-"+hash)
			if backend == "iptables" {
				testenv.Run(t, f.node, "iptables", "-w", "-t", "nat", "-F", "NB-POST-"+hash)
			} else {
				testenv.Run(t, f.node, "nft", "flush", "chain", "inet", "nodebridge", "post-"+hash)
			}
			stderr := add()
			if strings.Contains(stderr, "unchanged since verified") {
				t.Errorf("ADD after a flush trusted the old stamp; stderr:\n%s", stderr)
			}
			if !strings.Contains(stderr, "writing rules of network") {
				t.Errorf("ADD after a flush: the rules layer's repair is not in the trace; stderr:\n%s", stderr)
			}
			if got := f.allRules(); !slices.Equal(got, want) {
				t.Errorf("rules after flush and ADD:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// TestRulesOnBusyNode, under each backend: on a node whose other rules
// keep changing (kube-proxy's chains in iptables and in nftables, rewritten
// between every two ADDs), a network's rules once verified are not read
// again: the fingerprint of its own chains vouches for them. A flush of
// one of them, among the others' changes, is still seen and repaired by
// the next ADD.
func TestRulesOnBusyNode(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"iptables", "nftables"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, podSubnet)
			conf := f.conf("1.1.0")
			conf["ipMasqBackend"] = backend
			sync := 0
			kubeProxySync := func() { // a new endpoint for one Service, as kube-proxy writes it
				t.Helper()
				sync++
				dnat := fmt.Sprintf("198.18.9.%d", sync)
				restore := filepath.Join(t.TempDir(), "kube-proxy.rules")
				rules := fmt.Sprintf("*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-BUSY - [0:0]\n"+
					"-A KUBE-SERVICES -d 198.18.10.1/32 -p tcp --dport 80 -j KUBE-SVC-BUSY\n"+
					"-A KUBE-SVC-BUSY -p tcp -j DNAT --to-destination %s:80\nCOMMIT\n", dnat)
				if err := os.WriteFile(restore, []byte(rules), 0o600); err != nil {
					t.Fatal(err)
				}
				testenv.Run(t, f.node, "iptables-restore", "--noflush", "-w", "5", restore)
				testenv.Run(t, f.node, "nft", fmt.Sprintf("add table ip kube-proxy; flush table ip kube-proxy; "+
					"add chain ip kube-proxy svc; add rule ip kube-proxy svc ip daddr 198.18.10.1 tcp dport 80 dnat to %s", dnat))
			}
			add := func() string {
				t.Helper()
				kubeProxySync()
				return string(f.addTraced(f.newPod(), conf).Stderr)
			}
			add() // installs the rules
			add() // verifies them and records stamp and fingerprint
			want := f.allRules()
			for range 3 {
				if stderr := add(); !strings.Contains(stderr, "others' rules changed") {
					t.Errorf("ADD on a busy node re-read the rules; stderr:\n%s", stderr)
				}
			}
			testenv.Run(t, f.node, "iptables", "-w", "-F", "NB-FWD-"+f.chainHash(want))
			if stderr := add(); strings.Contains(stderr, "unchanged since verified") {
				t.Errorf("ADD after a flush on a busy node trusted the old fingerprint; stderr:\n%s", stderr)
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
	if !strings.Contains(testenv.Run(f.t, f.node, "nft", "list", "tables"), "table inet nodebridge") {
		return lines
	}
	for l := range strings.Lines(testenv.Run(f.t, f.node, "nft", "list", "table", "inet", "nodebridge")) {
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
