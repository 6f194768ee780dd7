package agent

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nodebridge/nodebridge/internal/testenv"
	"github.com/nodebridge/nodebridge/pkg/rtnl"
	"github.com/nodebridge/nodebridge/pkg/rules"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// testHost is a throwaway netns with an underlay link ul0 holding
// 198.18.0.11/24 and fd00:198:18::11/64, and a netlink handle into it.
type testHost struct {
	name string
	ns   netns.NsHandle
	h    *netlink.Handle
	rt   *rtnl.Conn // a blocking socket in the netns too
	link int        // index of ul0
}

func newHost(t *testing.T) *testHost { return newHostB(t) }

func newHostB(t testing.TB) *testHost {
	t.Helper()
	u := testenv.NewUnderlay(t, "agent")
	rt, err := rtnl.OpenIn(int(u.NS))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return &testHost{name: u.Name, ns: u.NS, h: u.Handle, rt: rt, link: u.Link}
}

// routes lists the host's routes of both families matching ip route's selector args.
func (th *testHost) routes(t testing.TB, sel ...string) []string {
	t.Helper()
	return testenv.Routes(t, th.name, sel...)
}

// agentChain reads iptables-save output: how many times FORWARD jumps to
// NB-AGENT-FWD, and the chain's rules.
func agentChain(save string) (jumps int, rules []string) {
	for _, l := range strings.Split(save, "\n") {
		switch {
		case l == "-A FORWARD -j NB-AGENT-FWD":
			jumps++
		case strings.HasPrefix(l, "-A NB-AGENT-FWD "):
			rules = append(rules, l)
		}
	}
	return jumps, rules
}

// wantAgentChain is NB-AGENT-FWD as the agent keeps it for cidrs.
func wantAgentChain(cidrs []netip.Prefix) []string {
	var out []string
	for _, flag := range []string{"-s", "-d"} {
		for _, p := range cidrs {
			out = append(out, "-A NB-AGENT-FWD "+flag+" "+p.String()+" -j ACCEPT")
		}
	}
	if len(cidrs) > 0 {
		out = append(out, "-A NB-AGENT-FWD -m conntrack --ctstate DNAT -j ACCEPT")
	}
	return out
}

// The agent keeps NB-AGENT-FWD of each family as the cluster CIDRs say,
// with one jump, on a node where it chooses iptables (a fresh netns).
func TestRulesKernel(t *testing.T) {
	th := newHost(t)
	rs := ruleSyncer{log: discard(), network: "nodebridge", backend: rulesIn(t, th.ns, "")}
	ctx := context.Background()
	a, b := pfx(t, "10.244.0.0/16", "fd00:10:244::/56"), pfx(t, "10.240.0.0/12", "fd00:10::/48")
	for _, s := range []struct {
		name   string
		cidrs  []netip.Prefix
		verify bool
	}{
		{"first apply", a, false},
		{"same again, verified", a, true},
		{"new cluster CIDRs", b, false},
	} {
		if err := rs.sync(ctx, s.cidrs, s.verify); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		for f, save := range []string{"iptables-save", "ip6tables-save"} {
			jumps, rules := agentChain(testenv.Run(t, th.name, save, "-t", "filter"))
			if jumps != 1 || !slices.Equal(rules, wantAgentChain(s.cidrs[f:f+1])) {
				t.Errorf("%s: %s: %d jumps, rules %q", s.name, save, jumps, rules)
			}
		}
	}
	testenv.Run(t, th.name, "iptables", "-w", "-F", "NB-AGENT-FWD")
	if err := rs.sync(ctx, b, true); err != nil {
		t.Fatal(err)
	}
	if _, rules := agentChain(testenv.Run(t, th.name, "iptables-save", "-t", "filter")); !slices.Equal(rules, wantAgentChain(b[:1])) {
		t.Errorf("a flushed chain is not repaired on verify: %q", rules)
	}
}

// On a node with nftables alone (no iptables binary at all), the agent
// chooses nftables, as the plugin would, and its accepts live in table
// inet nodebridge; the uninstall removes them.
func TestRulesNFTablesOnly(t *testing.T) {
	th := newHost(t)
	bin := t.TempDir()
	for _, tool := range []string{"ip", "nft"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skipf("%s not installed: %v", tool, err)
		}
		if err := os.Symlink(p, filepath.Join(bin, tool)); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin)
	rb := rulesIn(t, th.ns, "")
	rs := ruleSyncer{log: discard(), network: "nodebridge", backend: rb}
	ctx := context.Background()
	cidrs := pfx(t, "10.244.0.0/16", "fd00:10:244::/56")
	if err := rs.sync(ctx, cidrs, false); err != nil {
		t.Fatalf("sync without iptables: %v", err)
	}
	if len(rs.missing) != 0 {
		t.Errorf("families skipped on an nftables host: %v", rs.missing)
	}
	if err := rb.CheckCluster(ctx, rules.Cluster{Name: "nodebridge", CIDRs: cidrs}); err != nil {
		t.Errorf("CheckCluster: %v", err)
	}
	listing := testenv.Run(t, th.name, "nft", "list", "chain", "inet", "nodebridge", "cluster-fwd")
	for _, want := range []string{"hook forward", "ip saddr 10.244.0.0/16 counter", "ip daddr 10.244.0.0/16 counter",
		"ip6 saddr fd00:10:244::/56 counter", "ip6 daddr fd00:10:244::/56 counter", "accept"} {
		if !strings.Contains(listing, want) {
			t.Errorf("chain cluster-fwd lacks %q:\n%s", want, listing)
		}
	}
	if err := rs.sync(ctx, cidrs, true); err != nil {
		t.Fatalf("verify: %v", err)
	}
	cfg := Defaults()
	cfg.CNIConfDir, cfg.IPAMDataDir = t.TempDir(), t.TempDir()
	if err := uninstall(ctx, &cfg, th.h, rb, nil, discard()); err != nil {
		t.Fatal(err)
	}
	if out := testenv.Run(t, th.name, "nft", "list", "ruleset"); strings.Contains(out, "nodebridge") {
		t.Errorf("nftables accepts left after uninstall:\n%s", out)
	}
}

func TestUninstallKernel(t *testing.T) {
	th := newHost(t)
	cfg := Defaults()
	cfg.CNIConfDir, cfg.IPAMDataDir = t.TempDir(), t.TempDir()
	testenv.Run(t, th.name, "ip", "route", "add", "10.244.1.0/24", "via", "198.18.0.12", "proto", "78")
	testenv.Run(t, th.name, "ip", "route", "add", "10.244.8.0/24", "via", "198.18.0.18", "proto", "static")
	testenv.Run(t, th.name, "iptables", "-w", "-P", "FORWARD", "DROP") // so nftables keeps its iptables share
	cidrs := pfx(t, "10.244.0.0/16", "fd00:10:244::/56")
	for _, name := range []string{"nftables", "iptables"} { // the accepts of both backends, as a switch might leave
		rs := ruleSyncer{log: discard(), network: "nodebridge", backend: rulesIn(t, th.ns, name)}
		if err := rs.backend.EnsureCluster(context.Background(), rules.Cluster{Name: "nodebridge", CIDRs: cidrs}); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Run(t, th.name, "nft", "add", "table", "inet", "nodebridge")
	testenv.Run(t, th.name, "nft", "add", "chain", "inet", "nodebridge", "cluster-fwd", "{ type filter hook forward priority 0; }")
	if err := os.WriteFile(cfg.confPath(), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The plugin's bridge, with a pod still on it.
	testenv.Run(t, th.name, "ip", "link", "add", cfg.Bridge, "type", "bridge")
	testenv.Run(t, th.name, "ip", "link", "add", "nbpod0", "type", "veth", "peer", "name", "nbpod1")
	testenv.Run(t, th.name, "ip", "link", "set", "nbpod0", "master", cfg.Bridge)
	for i, name := range []string{"", "nftables"} { // the second run finds nothing left and succeeds
		if err := uninstall(context.Background(), &cfg, th.h, rulesIn(t, th.ns, name), nil, discard()); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	if _, err := th.h.LinkByName(cfg.Bridge); err != nil {
		t.Errorf("bridge %s with a port went: %v", cfg.Bridge, err)
	}
	testenv.Run(t, th.name, "ip", "link", "del", "nbpod0")
	if err := uninstall(context.Background(), &cfg, th.h, rulesIn(t, th.ns, ""), nil, discard()); err != nil {
		t.Fatalf("run after the pod went: %v", err)
	}
	if _, err := th.h.LinkByName(cfg.Bridge); err == nil {
		t.Errorf("bridge %s without ports is left", cfg.Bridge)
	}
	if got := th.routes(t, "proto", "78"); len(got) != 0 {
		t.Errorf("proto 78 routes left: %q", got)
	}
	if got := th.routes(t, "proto", "static"); len(got) != 1 {
		t.Errorf("the static route went too: %q", got)
	}
	for _, save := range []string{"iptables-save", "ip6tables-save"} {
		if text := testenv.Run(t, th.name, save); strings.Contains(text, "NB-AGENT-FWD") {
			t.Errorf("%s: chain left:\n%s", save, text)
		}
	}
	if out := testenv.Run(t, th.name, "nft", "list", "tables"); strings.Contains(out, "nodebridge") {
		t.Errorf("nftables table left: %s", out)
	}
	if _, err := os.Stat(filepath.Join(cfg.CNIConfDir, "10-nodebridge.conflist")); !os.IsNotExist(err) {
		t.Errorf("conflist left: %v", err)
	}
}
