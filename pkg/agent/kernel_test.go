package agent

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nodebridge/nodebridge/internal/testenv"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// testHost is a throwaway netns with an underlay link ul0 holding
// 198.18.0.11/24 and fd00:198:18::11/64, and a netlink handle into it.
type testHost struct {
	name string
	ns   netns.NsHandle
	h    *netlink.Handle
	link int // index of ul0
}

func newHost(t *testing.T) *testHost { return newHostB(t) }

func newHostB(t testing.TB) *testHost {
	t.Helper()
	name := testenv.NewNS(t, "agent")
	for _, argv := range [][]string{
		// No dummy module here: a veth pair whose peer stays in the netns.
		{"ip", "link", "add", "ul0", "mtu", "1400", "type", "veth", "peer", "name", "ul0p", "mtu", "1400"},
		{"ip", "link", "set", "ul0p", "up"},
		{"ip", "addr", "add", "198.18.0.11/24", "dev", "ul0"},
		{"ip", "-6", "addr", "add", "fd00:198:18::11/64", "dev", "ul0", "nodad"},
		{"ip", "link", "set", "ul0", "up"},
	} {
		testenv.Run(t, name, argv...)
	}
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	l, err := h.LinkByName("ul0")
	if err != nil {
		t.Fatal(err)
	}
	return &testHost{name: name, ns: ns, h: h, link: l.Attrs().Index}
}

// exec runs commands inside the host's netns.
func (th *testHost) exec(ctx context.Context, stdin []byte, argv ...string) ([]byte, error) {
	return runCommand(ctx, stdin, append([]string{"ip", "netns", "exec", th.name}, argv...)...)
}

// routes lists the host's routes of both families matching ip route's selector args.
func (th *testHost) routes(t testing.TB, sel ...string) []string {
	t.Helper()
	var out []string
	for _, fam := range []string{"-4", "-6"} {
		text := testenv.Run(t, th.name, append([]string{"ip", fam, "route", "show"}, sel...)...)
		for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
			if l = strings.TrimSpace(strings.ReplaceAll(l, " metric 1024 pref medium", "")); l != "" {
				out = append(out, l)
			}
		}
	}
	return out
}

func TestRulesKernel(t *testing.T) {
	th := &testHost{name: testenv.NewNode(t)}
	var restores int
	rs := ruleSyncer{log: discard(), exec: func(ctx context.Context, stdin []byte, argv ...string) ([]byte, error) {
		if strings.HasSuffix(argv[0], "-restore") {
			restores++
		}
		return th.exec(ctx, stdin, argv...)
	}}
	ctx := context.Background()
	a, b := pfx(t, "10.244.0.0/16", "fd00:10:244::/56"), pfx(t, "10.240.0.0/12", "fd00:10::/48")
	steps := []struct {
		name         string
		cidrs        []netip.Prefix
		verify       bool
		wantRestores int
	}{
		{"first apply: one restore per family", a, false, 2},
		{"same again, verified: none", a, true, 0},
		{"new cluster CIDRs: one restore per family", b, false, 2},
	}
	for _, s := range steps {
		restores = 0
		if _, err := rs.sync(ctx, s.cidrs, s.verify); err != nil || restores != s.wantRestores {
			t.Fatalf("%s: restores %d err %v, want %d", s.name, restores, err, s.wantRestores)
		}
		for f, save := range []string{"iptables-save", "ip6tables-save"} {
			jump, rules := parseChain(testenv.Run(t, th.name, save, "-t", "filter"))
			if !jump || !slices.Equal(rules, ruleLines(s.cidrs[f:f+1])) {
				t.Errorf("%s: %s: jump %v rules %q", s.name, save, jump, rules)
			}
		}
	}
	text := testenv.Run(t, th.name, "iptables-save", "-t", "filter")
	if n := strings.Count(text, jumpRule+"\n"); n != 1 {
		t.Errorf("%d jumps to %s, want 1:\n%s", n, agentChain, text)
	}
	if err := removeChain(ctx, th.exec, v4, discard()); err != nil {
		t.Fatal(err)
	}
	if text := testenv.Run(t, th.name, "iptables-save", "-t", "filter"); strings.Contains(text, agentChain) {
		t.Errorf("chain left after removal:\n%s", text)
	}
}

// Swapping the chain's contents never shows a reader an empty or half-filled
// chain: declaration and rules go in one iptables-restore commit.
func TestRulesSwapAtomic(t *testing.T) {
	th := &testHost{name: testenv.NewNode(t)}
	rs := ruleSyncer{log: discard(), exec: th.exec}
	ctx, cancel := context.WithCancel(context.Background())
	seen := make(chan []string, 1)
	go func() {
		defer close(seen)
		for ctx.Err() == nil {
			out, err := th.exec(context.Background(), nil, "iptables-save", "-t", "filter")
			if _, rules := parseChain(string(out)); err == nil && strings.Contains(string(out), jumpRule) && len(rules) != 4 {
				seen <- rules
				return
			}
		}
	}()
	sets := [][]netip.Prefix{pfx(t, "10.244.0.0/16", "10.96.0.0/12"), pfx(t, "10.0.0.0/8", "10.96.0.0/12")}
	for i := range 30 {
		if _, err := rs.sync(ctx, sets[i%2], false); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	if rules, ok := <-seen; ok {
		t.Errorf("a reader saw the chain half-swapped: %q", rules)
	}
}

func TestUninstallKernel(t *testing.T) {
	th := newHost(t)
	cfg := Defaults()
	cfg.CNIConfDir = t.TempDir()
	testenv.Run(t, th.name, "ip", "route", "add", "10.244.1.0/24", "via", "198.18.0.12", "proto", "78")
	testenv.Run(t, th.name, "ip", "route", "add", "10.244.8.0/24", "via", "198.18.0.18", "proto", "static")
	rs := ruleSyncer{log: discard(), exec: th.exec}
	if _, err := rs.sync(context.Background(), pfx(t, "10.244.0.0/16", "fd00:10:244::/56"), false); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.confPath(), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // the second run finds nothing left and succeeds
		if err := uninstall(context.Background(), &cfg, th.h, th.exec, discard()); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	if got := th.routes(t, "proto", "78"); len(got) != 0 {
		t.Errorf("proto 78 routes left: %q", got)
	}
	if got := th.routes(t, "proto", "static"); len(got) != 1 {
		t.Errorf("the static route went too: %q", got)
	}
	for _, save := range []string{"iptables-save", "ip6tables-save"} {
		if text := testenv.Run(t, th.name, save); strings.Contains(text, agentChain) {
			t.Errorf("%s: chain left:\n%s", save, text)
		}
	}
	if _, err := os.Stat(filepath.Join(cfg.CNIConfDir, "10-nodebridge.conflist")); !os.IsNotExist(err) {
		t.Errorf("conflist left: %v", err)
	}
}
