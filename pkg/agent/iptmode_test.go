package agent

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/nodebridge/nodebridge/internal/testenv"
	"github.com/nodebridge/nodebridge/pkg/rules"
)

// The agent's image ships both iptables variants. On a node whose FORWARD
// drop lives in iptables-legacy's tables the agent chooses legacy and puts
// NB-AGENT-FWD there, beside the drop, whichever backend it runs; on a node
// whose rules are iptables-nft's it stays with nft and legacy gets nothing.
func TestIPTablesModeKernel(t *testing.T) {
	for _, tool := range []string{"iptables-legacy", "iptables-legacy-save", "iptables-legacy-restore",
		"ip6tables-legacy-save", "ip6tables-legacy-restore", "iptables-nft", "iptables-nft-save",
		"iptables-nft-restore", "ip6tables-nft-save", "ip6tables-nft-restore"} {
		testenv.Tool(t, tool)
	}
	for _, tc := range []struct {
		backend, drop string // drop: the variant whose iptables sets FORWARD's policy
		want          rules.IPTablesMode
	}{
		{"", "legacy", rules.ModeLegacy},
		{rules.NFTablesName, "legacy", rules.ModeLegacy},
		{rules.IPTablesName, "legacy", rules.ModeLegacy},
		{"", "nft", rules.ModeNFT},
		{rules.IPTablesName, "nft", rules.ModeNFT},
	} {
		t.Run(tc.backend+"/"+tc.drop, func(t *testing.T) {
			th := newHost(t)
			testenv.Run(t, th.name, "iptables-"+tc.drop, "-w", "-P", "FORWARD", "DROP")
			var mode rules.IPTablesMode
			var why string
			r := &nsRules{ns: th.ns}
			err := inNetns(th.ns, func() (err error) {
				mode, why = rules.DetectIPTablesMode()
				r.b, err = rules.SelectCluster(tc.backend, mode, t.Logf)
				return err
			})
			if err != nil || mode != tc.want {
				t.Fatalf("mode %q (because %s), err %v: want %q", mode, why, err, tc.want)
			}
			rs := ruleSyncer{log: discard(), network: "nodebridge", backend: r}
			cidrs := pfx(t, "10.244.0.0/16")
			if err := rs.sync(context.Background(), cidrs, false); err != nil {
				t.Fatal(err)
			}
			other := map[string]string{"legacy": "nft", "nft": "legacy"}[tc.drop]
			save := testenv.Run(t, th.name, "iptables-"+tc.drop+"-save", "-t", "filter")
			if jumps, got := agentChain(save); jumps != 1 || !slices.Equal(got, wantAgentChain(cidrs)) {
				t.Errorf("iptables-%s-save: %d jumps, rules %q\n%s", tc.drop, jumps, got, save)
			}
			if !strings.Contains(save, ":FORWARD DROP") {
				t.Errorf("iptables-%s-save lost the drop:\n%s", tc.drop, save)
			}
			if text := testenv.Run(t, th.name, "iptables-"+other+"-save"); strings.Contains(text, "NB-AGENT-FWD") {
				t.Errorf("NB-AGENT-FWD in iptables-%s's tables too:\n%s", other, text)
			}
		})
	}
}
