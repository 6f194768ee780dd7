package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"

	"github.com/nodebridge/nodebridge/pkg/rules"
)

// ruleSource is where a plugin's rules are counted: the iptables tables, or
// nodebridge's own nftables table and the iptables tables, by the backend
// the plugin writes to.
type ruleSource int

const (
	rulesIPTables ruleSource = iota // the zero value: the reference writes iptables rules
	rulesNFT
)

// String names the source, in the JSON beside the counts.
func (s ruleSource) String() string {
	if s == rulesNFT {
		return "nftables table inet " + rules.NFTTable + ", and iptables and ip6tables, all tables"
	}
	return "iptables and ip6tables, all tables"
}

// count counts the rules from s in the netns at node. The nftables backend
// also writes to iptables: where iptables' FORWARD drops, as on the bench's
// node, a network gets an NB-FWD-<hash> chain there to let its pods'
// traffic through, so its iptables rules count too.
func (s ruleSource) count(node string) (int, error) {
	ipt, err := countIPTablesRules(node)
	if err != nil || s != rulesNFT {
		return ipt, err
	}
	nft, err := countNFTRules(node)
	return ipt + nft, err
}

// countIPTablesRules counts the rules in the netns at node: the "-A" lines
// of iptables-save and ip6tables-save over all tables.
func countIPTablesRules(node string) (int, error) {
	n := 0
	for _, tool := range []string{"iptables-save", "ip6tables-save"} {
		out, err := runIn(node, tool)
		if err != nil {
			return 0, err
		}
		for l := range strings.Lines(out) {
			if strings.HasPrefix(l, "-A ") {
				n++
			}
		}
	}
	return n, nil
}

// countNFTRules counts the rules of table inet nodebridge in the netns at
// node. It lists the whole inet ruleset, not the table, so that a table
// not made yet counts 0 rather than failing; iptables-nft keeps its tables
// in families ip and ip6, so none of them show.
//
// Equivalent to: nft -j list ruleset inet
func countNFTRules(node string) (int, error) {
	var out []byte
	err := inNetns(node, func() error {
		cmd := exec.Command("nft", "-j", "list", "ruleset", "inet")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		var err error
		if out, err = cmd.Output(); err != nil {
			return fmt.Errorf("nft -j list ruleset inet in %s: %w: %s", node, err, stderr.Bytes())
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	n, err := nftTableRules(out, "inet", rules.NFTTable)
	if err != nil {
		return 0, fmt.Errorf("nft -j list ruleset inet in %s: %w", node, err)
	}
	return n, nil
}

// nftTableRules counts the rule objects of table family name in the JSON
// that nft -j prints.
func nftTableRules(out []byte, family, name string) (int, error) {
	var doc struct {
		Nftables []struct {
			Rule *struct {
				Family string `json:"family"`
				Table  string `json:"table"`
			} `json:"rule"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return 0, fmt.Errorf("decode nft JSON: %w", err)
	}
	n := 0
	for _, o := range doc.Nftables {
		if o.Rule != nil && o.Rule.Family == family && o.Rule.Table == name {
			n++
		}
	}
	return n, nil
}
