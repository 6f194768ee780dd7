package routes

import (
	"io"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/nodebridge/nodebridge/internal/testenv"
	"github.com/nodebridge/nodebridge/pkg/rtnl"
	"github.com/vishvananda/netlink"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// testHost is a throwaway netns with an underlay link ul0 holding
// 198.18.0.11/24 and fd00:198:18::11/64, and a netlink handle into it.
type testHost struct {
	name string
	h    *netlink.Handle
	rt   *rtnl.Conn // a blocking socket in the netns too, for ReadHost
	link int        // index of ul0
}

func newHost(t *testing.T) *testHost {
	t.Helper()
	u := testenv.NewUnderlay(t, "routes")
	rt, err := rtnl.OpenIn(int(u.NS))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return &testHost{name: u.Name, h: u.Handle, rt: rt, link: u.Link}
}

// routes lists the host's routes of both families matching ip route's selector args.
func (th *testHost) routes(t testing.TB, sel ...string) []string {
	t.Helper()
	return testenv.Routes(t, th.name, sel...)
}

// discard is a logger for tests that check state, not log lines.
func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// ReadHost sees every link's addresses and the default routes' gateways;
// UnderlayOf finds the link of each own address in them.
func TestReadHostKernel(t *testing.T) {
	th := newHost(t)
	for _, argv := range [][]string{
		{"ip", "link", "add", "other0", "type", "veth", "peer", "name", "other0p"},
		{"ip", "addr", "add", "10.99.0.1/16", "dev", "other0"},
		{"ip", "link", "set", "other0", "up"},
		{"ip", "route", "add", "default", "via", "198.18.0.1"},
		{"ip", "-6", "route", "add", "default", "via", "fd00:198:18::1"},
	} {
		testenv.Run(t, th.name, argv...)
	}
	hs, err := ReadHost(th.rt)
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, a := range hs.Addrs {
		addrs = append(addrs, a.Prefix.String()+" "+a.LinkName)
	}
	for _, want := range []string{"198.18.0.11/24 ul0", "fd00:198:18::11/64 ul0", "10.99.0.1/16 other0", "127.0.0.1/8 lo"} {
		if !slices.Contains(addrs, want) {
			t.Errorf("addresses: no %q in %q", want, addrs)
		}
	}
	if want := pfxAddrs("198.18.0.1", "fd00:198:18::1"); !slices.Equal(hs.Gateways, want) {
		t.Errorf("default gateways: got %v, want %v", hs.Gateways, want)
	}
	for ip, want := range map[string]string{"198.18.0.11": "198.18.0.0/24", "fd00:198:18::11": "fd00:198:18::/64"} {
		u := UnderlayOf(netip.MustParseAddr(ip), hs.Addrs)
		if u == nil || u.LinkIndex != th.link || u.LinkName != "ul0" || u.MTU != 1400 || !slices.Contains(u.Connected, netip.MustParsePrefix(want)) {
			t.Errorf("underlay of %s: got %+v", ip, u)
		}
	}
	if u := UnderlayOf(netip.MustParseAddr("198.18.0.99"), hs.Addrs); u != nil {
		t.Errorf("an address on no link: underlay %+v", u)
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
		testenv.Run(t, th.name, argv...)
	}
	wanted := map[netip.Prefix]Route{}
	for _, r := range []Route{want("10.244.1.0/24", "198.18.0.12", th.link), want("10.244.2.0/24", "198.18.0.13", th.link),
		want("fd00:10:244:1::/64", "fd00:198:18::12", th.link)} {
		wanted[r.Dst] = r
	}
	var log strings.Builder
	rs := NewSyncer(th.h, th.rt, slog.New(slog.NewTextHandler(&log, nil)))
	installed, changes, err := rs.Sync(wanted)
	if err == nil || !strings.Contains(err.Error(), "ip route add 10.244.2.0/24 via 198.18.0.13 dev ul0") || installed != 2 || changes != 4 {
		t.Fatalf("first sync: installed %d changes %d err %v; want 2, 4 (1 add, 1 replace, 2 deletes) and "+
			"an error for the destination held by proto 77, naming the link", installed, changes, err)
	}
	checkLinkNamed(t, log.String(), 4)
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
	testenv.Run(t, th.name, "ip", "route", "del", "10.244.2.0/24", "proto", "77")
	if installed, changes, err := rs.Sync(wanted); err != nil || installed != 3 || changes != 1 {
		t.Errorf("sync once the destination is free: installed %d changes %d err %v; want 3, 1", installed, changes, err)
	}
	if installed, changes, err := rs.Sync(wanted); err != nil || installed != 3 || changes != 0 {
		t.Errorf("sync with nothing to do: installed %d changes %d err %v; want 3, 0", installed, changes, err)
	}
}

// checkLinkNamed: the sync logged n route changes, each naming the link
// (and the replaced route's link) by name, never by index.
func checkLinkNamed(t *testing.T, log string, n int) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(log), "\n")
	if len(lines) != n {
		t.Fatalf("%d log lines, want %d:\n%s", len(lines), n, log)
	}
	for _, l := range lines {
		named := strings.Contains(l, " link=ul0") && !strings.Contains(l, "link=#")
		if named && strings.Contains(l, "route replaced") {
			named = strings.Contains(l, " was_link=ul0")
		}
		if !named {
			t.Errorf("log line does not name the link ul0: %s", l)
		}
	}
}

// A route of another protocol to a wanted destination (flannel's proto
// boot route to a peer) is seen by ReadHost, not when a proto-78 route has
// the destination too, and is replaced by ours when handed to SyncWith as
// one to take over: one change, the same metric, proto 78, no second route.
func TestTakeOverKernel(t *testing.T) {
	th := newHost(t)
	for _, argv := range [][]string{
		{"ip", "route", "add", "10.244.3.0/24", "via", "198.18.0.13", "dev", "ul0", "proto", "boot"},
		{"ip", "route", "add", "10.244.4.0/24", "via", "198.18.0.99", "dev", "ul0", "proto", "static"},
		{"ip", "route", "add", "10.244.5.0/24", "via", "198.18.0.15", "dev", "ul0", "proto", "78"},
		{"ip", "route", "add", "10.244.5.0/24", "via", "198.18.0.15", "dev", "ul0", "proto", "static", "metric", "100"},
	} {
		testenv.Run(t, th.name, argv...)
	}
	hs, err := ReadHost(th.rt)
	if err != nil {
		t.Fatal(err)
	}
	var foreign []string
	for dst := range hs.Foreign {
		foreign = append(foreign, dst.String())
	}
	slices.Sort(foreign)
	if want := []string{"10.244.3.0/24", "10.244.4.0/24"}; !slices.Equal(foreign, want) {
		t.Fatalf("foreign destinations %q, want %q (not the connected prefix, not one a proto-78 route has)", foreign, want)
	}
	w3, w4 := want("10.244.3.0/24", "198.18.0.13", th.link), want("10.244.4.0/24", "198.18.0.14", th.link)
	f3, f4 := hs.Foreign[w3.Dst], hs.Foreign[w4.Dst]
	if !Takes(&f3, w3) || Takes(&f4, w4) {
		t.Fatalf("Takes: same gateway %v, other gateway %v; want true, false", Takes(&f3, w3), Takes(&f4, w4))
	}
	w5 := want("10.244.5.0/24", "198.18.0.15", th.link)
	wanted := map[netip.Prefix]Route{w3.Dst: w3, w5.Dst: w5}
	installed, changes, err := NewSyncer(th.h, th.rt, discard()).SyncWith(wanted, append(hs.Ours, f3))
	if err != nil || installed != 2 || changes != 1 {
		t.Fatalf("take over: installed %d changes %d err %v; want 2, 1", installed, changes, err)
	}
	show := func(dst string) string { return strings.TrimSpace(testenv.Run(t, th.name, "ip", "route", "show", dst)) }
	if got, want := show("10.244.3.0/24"), "10.244.3.0/24 via 198.18.0.13 dev ul0 proto 78"; got != want {
		t.Errorf("routes to 10.244.3.0/24:\n got %q\nwant %q", got, want)
	}
	if got := show("10.244.4.0/24"); got != "10.244.4.0/24 via 198.18.0.99 dev ul0 proto static" {
		t.Errorf("a foreign route not handed over was touched: %q", got)
	}
}
