package agent

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nodebridge/nodebridge/internal/netnstest"
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
	name := netnstest.NewNS(t, "agent")
	for _, argv := range [][]string{
		// No dummy module here: a veth pair whose peer stays in the netns.
		{"ip", "link", "add", "ul0", "mtu", "1400", "type", "veth", "peer", "name", "ul0p", "mtu", "1400"},
		{"ip", "link", "set", "ul0p", "up"},
		{"ip", "addr", "add", "198.18.0.11/24", "dev", "ul0"},
		{"ip", "-6", "addr", "add", "fd00:198:18::11/64", "dev", "ul0", "nodad"},
		{"ip", "link", "set", "ul0", "up"},
	} {
		netnstest.Run(t, name, argv...)
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
		text := netnstest.Run(t, th.name, append([]string{"ip", fam, "route", "show"}, sel...)...)
		for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
			if l = strings.TrimSpace(strings.ReplaceAll(l, " metric 1024 pref medium", "")); l != "" {
				out = append(out, l)
			}
		}
	}
	return out
}

// readHost sees every link's addresses and the default routes' gateways;
// underlaysOf finds the link of each InternalIP in them.
func TestReadHostKernel(t *testing.T) {
	th := newHost(t)
	for _, argv := range [][]string{
		{"ip", "link", "add", "other0", "type", "veth", "peer", "name", "other0p"},
		{"ip", "addr", "add", "10.99.0.1/16", "dev", "other0"},
		{"ip", "link", "set", "other0", "up"},
		{"ip", "route", "add", "default", "via", "198.18.0.1"},
		{"ip", "-6", "route", "add", "default", "via", "fd00:198:18::1"},
	} {
		netnstest.Run(t, th.name, argv...)
	}
	hs, err := readHost(th.h)
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, a := range hs.addrs {
		addrs = append(addrs, a.prefix.String()+" "+a.linkName)
	}
	for _, want := range []string{"198.18.0.11/24 ul0", "fd00:198:18::11/64 ul0", "10.99.0.1/16 other0", "127.0.0.1/8 lo"} {
		if !slices.Contains(addrs, want) {
			t.Errorf("addresses: no %q in %q", want, addrs)
		}
	}
	if want := pfxAddrs("198.18.0.1", "fd00:198:18::1"); !slices.Equal(hs.gateways, want) {
		t.Errorf("default gateways: got %v, want %v", hs.gateways, want)
	}
	ul, err := underlaysOf([2]netip.Addr{netip.MustParseAddr("198.18.0.11"), netip.MustParseAddr("fd00:198:18::11")}, hs.addrs)
	if err != nil {
		t.Fatal(err)
	}
	for f, want := range []string{"198.18.0.0/24", "fd00:198:18::/64"} {
		u := ul[f]
		if u == nil || u.linkIndex != th.link || u.linkName != "ul0" || u.mtu != 1400 || !slices.Contains(u.connected, netip.MustParsePrefix(want)) {
			t.Errorf("%s underlay: got %+v", familyName(f), u)
		}
	}
	if _, err := underlaysOf([2]netip.Addr{netip.MustParseAddr("198.18.0.99")}, hs.addrs); err == nil {
		t.Error("an InternalIP on no link: no error")
	}
	if _, err := underlaysOf([2]netip.Addr{}, hs.addrs); err != errNoInternal {
		t.Errorf("no InternalIP: got %v", err)
	}
}

// pfxAddrs parses addresses.
func pfxAddrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestRouteSyncKernel(t *testing.T) {
	th := newHost(t)
	for _, argv := range [][]string{
		{"ip", "route", "add", "10.244.1.0/24", "via", "198.18.0.99", "dev", "ul0", "proto", "78"}, // wrong gateway
		{"ip", "route", "add", "10.244.9.0/24", "via", "198.18.0.19", "proto", "78"},               // a Node deleted while the agent was down
		{"ip", "-6", "route", "add", "fd00:10:244:9::/64", "via", "fd00:198:18::19", "proto", "78"},
		{"ip", "route", "add", "10.244.8.0/24", "via", "198.18.0.18", "proto", "static"}, // not ours
		{"ip", "route", "add", "10.244.2.0/24", "via", "198.18.0.17", "proto", "77"},     // not ours, same dst as a wanted one
	} {
		netnstest.Run(t, th.name, argv...)
	}
	want := map[netip.Prefix]route{}
	for _, r := range []route{want3("10.244.1.0/24", "198.18.0.12", th.link), want3("10.244.2.0/24", "198.18.0.13", th.link),
		want3("fd00:10:244:1::/64", "fd00:198:18::12", th.link)} {
		want[r.dst] = r
	}
	rs := routeSyncer{h: th.h, log: discard()}
	installed, changes, err := rs.sync(want)
	if err == nil || !strings.Contains(err.Error(), "ip route add 10.244.2.0/24") || installed != 2 || changes != 4 {
		t.Fatalf("first sync: installed %d changes %d err %v; want 2, 4 (1 add, 1 replace, 2 deletes) and "+
			"an error for the destination held by proto 77", installed, changes, err)
	}
	wantOurs := []string{"10.244.1.0/24 via 198.18.0.12 dev ul0", "fd00:10:244:1::/64 via fd00:198:18::12 dev ul0"}
	if got := th.routes(t, "proto", "78"); !slices.Equal(got, wantOurs) {
		t.Errorf("proto 78 routes:\n got %q\nwant %q", got, wantOurs)
	}
	if got := th.routes(t, "proto", "static"); !slices.Equal(got, []string{"10.244.8.0/24 via 198.18.0.18 dev ul0"}) {
		t.Errorf("a static route was touched: %q", got)
	}
	if got := th.routes(t, "proto", "77"); !slices.Equal(got, []string{"10.244.2.0/24 via 198.18.0.17 dev ul0"}) {
		t.Errorf("a proto 77 route was touched: %q", got)
	}
	netnstest.Run(t, th.name, "ip", "route", "del", "10.244.2.0/24", "proto", "77")
	if installed, changes, err := rs.sync(want); err != nil || installed != 3 || changes != 1 {
		t.Errorf("sync once the destination is free: installed %d changes %d err %v; want 3, 1", installed, changes, err)
	}
	if installed, changes, err := rs.sync(want); err != nil || installed != 3 || changes != 0 {
		t.Errorf("sync with nothing to do: installed %d changes %d err %v; want 3, 0", installed, changes, err)
	}
}

func want3(dst, gw string, link int) route { return want(dst, gw, link) }

func TestRulesKernel(t *testing.T) {
	th := &testHost{name: netnstest.NewNode(t)}
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
			jump, rules := parseChain(netnstest.Run(t, th.name, save, "-t", "filter"))
			if !jump || !slices.Equal(rules, ruleLines(s.cidrs[f:f+1])) {
				t.Errorf("%s: %s: jump %v rules %q", s.name, save, jump, rules)
			}
		}
	}
	text := netnstest.Run(t, th.name, "iptables-save", "-t", "filter")
	if n := strings.Count(text, jumpRule+"\n"); n != 1 {
		t.Errorf("%d jumps to %s, want 1:\n%s", n, agentChain, text)
	}
	if err := removeChain(ctx, th.exec, v4, discard()); err != nil {
		t.Fatal(err)
	}
	if text := netnstest.Run(t, th.name, "iptables-save", "-t", "filter"); strings.Contains(text, agentChain) {
		t.Errorf("chain left after removal:\n%s", text)
	}
}

// Swapping the chain's contents never shows a reader an empty or half-filled
// chain: declaration and rules go in one iptables-restore commit.
func TestRulesSwapAtomic(t *testing.T) {
	th := &testHost{name: netnstest.NewNode(t)}
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
	netnstest.Run(t, th.name, "ip", "route", "add", "10.244.1.0/24", "via", "198.18.0.12", "proto", "78")
	netnstest.Run(t, th.name, "ip", "route", "add", "10.244.8.0/24", "via", "198.18.0.18", "proto", "static")
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
		if text := netnstest.Run(t, th.name, save); strings.Contains(text, agentChain) {
			t.Errorf("%s: chain left:\n%s", save, text)
		}
	}
	if _, err := os.Stat(filepath.Join(cfg.CNIConfDir, "10-nodebridge.conflist")); !os.IsNotExist(err) {
		t.Errorf("conflist left: %v", err)
	}
}
