package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// loadShape is one of kube-proxy's modes as a busy round writes it into a
// node: the whole ruleset, one partial sync, the tool that applies either
// in one transaction, and how the load's rules are counted.
type loadShape struct {
	Name       string   // the -busy value: "iptables" or "nftables"
	Tag        string   // in the round's name: "busy-ipt-30"
	argv       []string // reads the rules from stdin
	full       func(services int) []byte
	sync       func(s kpService) []byte // s's chains, from generation s.gen-1 to s.gen
	count      func(node string) (int, error)
	perService int // rules each Service adds
	fixed      int // rules whatever the Services
}

// loadRun is what a busy round's kube-proxy load was and did in one node.
type loadRun struct {
	Shape        string `json:"shape"`
	Services     int    `json:"services"`
	Rules        int    `json:"rules"` // iptables: -A lines of iptables-save and ip6tables-save; nftables: rules of table ip kube-proxy
	Install      ms     `json:"install_ms"`
	Resync       ms     `json:"resync_every_ms"`
	Syncs        int    `json:"syncs"` // partial syncs done while the plugin's ADDs and DELs ran
	SyncP50      ms     `json:"sync_p50_ms"`
	SyncMax      ms     `json:"sync_max_ms"`
	SyncFailures int    `json:"sync_failures"`
	FirstError   string `json:"first_error,omitempty"`
}

// shapeNamed returns the shape the -busy value name stands for.
func shapeNamed(name string) (loadShape, error) {
	switch name {
	case "iptables":
		return loadShape{Name: name, Tag: "ipt", argv: []string{"iptables-restore", "-w", "--noflush"},
			full: iptFull, sync: iptSync, count: countIPTablesRules, perService: iptRulesPerService, fixed: iptFixedRules}, nil
	case "nftables":
		return loadShape{Name: name, Tag: "nft", argv: []string{"nft", "-f", "-"},
			full: nftFull, sync: nftSync, count: countKubeProxyNFT, perService: nftRulesPerService, fixed: nftFixedRules}, nil
	}
	return loadShape{}, fmt.Errorf("-busy: unknown load shape %q (want iptables or nftables)", name)
}

// rules is the number of rules the shape holds with n Services.
func (l loadShape) rules(n int) int { return l.fixed + n*l.perService }

// apply feeds text to the shape's tool from the calling thread, so in the
// netns that thread is in, node, which only names it in errors.
//
// Equivalent to: ip netns exec NODE iptables-restore -w --noflush < text
// (or nft -f - < text)
func (l loadShape) apply(ctx context.Context, node string, text []byte) error {
	cmd := exec.CommandContext(ctx, l.argv[0], l.argv[1:]...)
	cmd.Stdin = bytes.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s in %s: %w: %s", strings.Join(l.argv, " "), node, err, firstLines(out, 5))
	}
	return nil
}

// install writes the whole load for services Services into the netns at
// node, in one transaction, and counts its rules there.
func (l loadShape) install(ctx context.Context, node string, services int) (loadRun, error) {
	r := loadRun{Shape: l.Name, Services: services}
	text := l.full(services)
	err := inNetns(node, func() error {
		start := time.Now()
		err := l.apply(ctx, node, text)
		r.Install = ms(time.Since(start))
		return err
	})
	if err != nil {
		return r, fmt.Errorf("load %d Services of kube-proxy %s rules: %w", services, l.Name, err)
	}
	if r.Rules, err = l.count(node); err != nil {
		return r, fmt.Errorf("count kube-proxy %s rules: %w", l.Name, err)
	}
	return r, nil
}

// countKubeProxyNFT counts the rules of table ip kube-proxy in the netns at
// node.
//
// Equivalent to: nft -j list table ip kube-proxy
func countKubeProxyNFT(node string) (int, error) {
	out, err := runIn(node, "nft", "-j", "list", "table", "ip", nftTableName)
	if err != nil {
		return 0, err
	}
	n, err := nftTableRules([]byte(out), "ip", nftTableName)
	if err != nil {
		return 0, fmt.Errorf("nft -j list table ip %s in %s: %w", nftTableName, node, err)
	}
	return n, nil
}

// firstLines is at most n lines of out: a tool rejecting 20,000 lines may
// echo many of them.
func firstLines(out []byte, n int) string {
	lines := strings.SplitN(strings.TrimSpace(string(out)), "\n", n+1)
	if len(lines) > n {
		lines[n] = "..."
	}
	return strings.Join(lines, "\n")
}
