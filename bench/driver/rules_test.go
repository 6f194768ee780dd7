package main

import (
	"fmt"
	"testing"
)

func TestNFTTableRules(t *testing.T) {
	const meta = `{"metainfo": {"version": "1.0.6", "json_schema_version": 1}}`
	rule := func(family, table string) string {
		return fmt.Sprintf(`{"rule": {"family": %q, "table": %q, "chain": "c", "handle": 2, "expr": [{"accept": null}]}}`, family, table)
	}
	tests := []struct {
		name    string
		out     string
		want    int
		wantErr bool
	}{
		{"empty ruleset", `{"nftables": [` + meta + `]}`, 0, false},
		{"table without rules", `{"nftables": [` + meta + `, {"table": {"family": "inet", "name": "nodebridge", "handle": 2}}]}`, 0, false},
		{"ours and others'", `{"nftables": [` + meta + `, {"table": {"family": "inet", "name": "nodebridge"}}, ` +
			rule("inet", "nodebridge") + `, ` + rule("inet", "other") + `, ` + rule("ip", "nodebridge") + `, ` +
			rule("inet", "nodebridge") + `]}`, 2, false},
		{"not JSON", "Error: No such file or directory", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := nftTableRules([]byte(tt.out), "inet", "nodebridge")
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("nftTableRules = %d, %v; want %d, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// Each source counts its own rules, in the netns given, and a table not
// made yet counts 0; the nftables source counts iptables' rules as well.
func TestRuleSourceCount(t *testing.T) {
	s := newTestNS(t)
	node, other := mustAdd(t, s, "node"), mustAdd(t, s, "other")
	counts := func(when string, wantIPT, wantNFT int) {
		t.Helper()
		for src, want := range map[ruleSource]int{rulesIPTables: wantIPT, rulesNFT: wantNFT} {
			if got, err := src.count(node); err != nil || got != want {
				t.Errorf("%s: %v count = %d, %v; want %d", when, src, got, err, want)
			}
		}
	}
	counts("fresh netns", 0, 0)
	for _, argv := range [][]string{
		{"iptables", "-w", "-P", "FORWARD", "DROP"}, // iptables-nft: tables in family ip, not ours
		{"iptables", "-w", "-A", "FORWARD", "-s", "10.88.0.0/16", "-j", "ACCEPT"},
		{"nft", "add", "table", "inet", "nodebridge"},
		{"nft", "add", "chain", "inet", "nodebridge", "c1", "{ type filter hook forward priority 0; }"},
		{"nft", "add", "rule", "inet", "nodebridge", "c1", "ip", "saddr", "10.88.0.0/16", "counter", "accept"},
		{"nft", "add", "rule", "inet", "nodebridge", "c1", "accept"},
		{"nft", "add", "table", "inet", "someone-else"},
		{"nft", "add", "chain", "inet", "someone-else", "c"},
		{"nft", "add", "rule", "inet", "someone-else", "c", "accept"},
	} {
		if _, err := runIn(node, argv...); err != nil {
			t.Fatal(err)
		}
	}
	counts("after adding rules", 1, 3) // the nftables backend's count takes in iptables too
	for _, src := range []ruleSource{rulesIPTables, rulesNFT} {
		if got, err := src.count(other); err != nil || got != 0 {
			t.Errorf("%v count in another netns = %d, %v; want 0", src, got, err)
		}
	}
}
