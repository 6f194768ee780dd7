package rules

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// policyNet is a node netns routing between three "pod" netns: a and b on
// the node (10.244.1.2, .3; a also fd00:10:244:1::2) and r, a remote pod
// (10.244.2.6, fd00:10:244:2::6), each on its own veth.
type policyNet struct {
	node, a, b, r string
}

func newPolicyNet(t *testing.T) policyNet {
	t.Helper()
	testenv.RequireRoot(t)
	pn := policyNet{node: testenv.NewNS(t, "pnode"), a: testenv.NewNS(t, "pa"), b: testenv.NewNS(t, "pb"), r: testenv.NewNS(t, "pr")}
	for _, n := range []string{pn.node, pn.a, pn.b, pn.r} {
		// No DAD of the link-local addresses: neighbour discovery at once.
		testenv.Run(t, n, "sysctl", "-q", "-w", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	}
	for _, l := range []struct{ ns, dev, gw4, gw6, ip4, ip6 string }{
		{pn.a, "va", "10.244.1.1", "fd00:10:244:1::1", "10.244.1.2", "fd00:10:244:1::2"},
		{pn.b, "vb", "10.244.1.1", "fd00:10:244:1::1", "10.244.1.3", "fd00:10:244:1::3"},
		{pn.r, "vr", "10.244.2.1", "fd00:10:244:2::1", "10.244.2.6", "fd00:10:244:2::6"},
	} {
		testenv.Run(t, pn.node, "ip", "link", "add", l.dev, "type", "veth", "peer", "name", "eth0", "netns", l.ns)
		testenv.Run(t, pn.node, "ip", "addr", "add", l.gw4+"/32", "dev", l.dev)
		testenv.Run(t, pn.node, "ip", "addr", "add", l.gw6+"/128", "dev", l.dev, "nodad")
		testenv.Run(t, pn.node, "ip", "link", "set", l.dev, "up")
		testenv.Run(t, pn.node, "ip", "route", "add", l.ip4+"/32", "dev", l.dev)
		testenv.Run(t, pn.node, "ip", "-6", "route", "add", l.ip6+"/128", "dev", l.dev)
		testenv.Run(t, l.ns, "ip", "addr", "add", l.ip4+"/32", "dev", "eth0")
		testenv.Run(t, l.ns, "ip", "addr", "add", l.ip6+"/128", "dev", "eth0", "nodad")
		testenv.Run(t, l.ns, "ip", "link", "set", "eth0", "up")
		testenv.Run(t, l.ns, "ip", "route", "add", l.gw4, "dev", "eth0")
		testenv.Run(t, l.ns, "ip", "route", "add", "default", "via", l.gw4)
		testenv.Run(t, l.ns, "ip", "-6", "route", "add", l.gw6, "dev", "eth0")
		testenv.Run(t, l.ns, "ip", "-6", "route", "add", "default", "via", l.gw6)
	}
	testenv.Run(t, pn.node, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
	return pn
}

// connects reports whether a TCP connection from netns from reaches port
// on addr, served in netns to, within half a second.
func connects(t *testing.T, from, to, addr string, port int) bool {
	t.Helper()
	hp := net.JoinHostPort(addr, fmt.Sprint(port))
	var ln net.Listener
	if err := ns.WithNetNSPath(testenv.Path(to), func(ns.NetNS) error {
		var err error
		ln, err = net.Listen("tcp", hp)
		return err
	}); err != nil {
		t.Fatalf("listen on %s in %s: %v", hp, to, err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	var c net.Conn
	err := ns.WithNetNSPath(testenv.Path(from), func(ns.NetNS) error {
		var err error
		c, err = (&net.Dialer{Timeout: 500 * time.Millisecond}).Dial("tcp", hp)
		return err
	})
	if err == nil {
		c.Close()
	}
	return err == nil
}

// EnsurePolicy enforces what it is given, both directions and families,
// on forwarded traffic; replies pass; a new Policy replaces the old at once
// and DeletePolicy lifts it.
func TestKernelPolicy(t *testing.T) {
	pn := newPolicyNet(t)
	b := nftOnlyIn(t, pn.node)
	ctx := context.Background()
	a4, a6, b4, r4, r6 := "10.244.1.2", "fd00:10:244:1::2", "10.244.1.3", "10.244.2.6", "fd00:10:244:2::6"
	for _, c := range []struct {
		from, to, addr string
		port           int
	}{{pn.b, pn.a, a4, 80}, {pn.r, pn.a, a4, 80}, {pn.r, pn.a, a6, 80}, {pn.b, pn.r, r4, 80}} {
		if !connects(t, c.from, c.to, c.addr, c.port) {
			t.Fatalf("before any policy: %s to %s:%d refused", c.from, c.addr, c.port)
		}
	}
	pfx := netip.MustParsePrefix
	b6 := "fd00:10:244:1::3"
	p := Policy{
		// a: ingress isolated, both families; only r on TCP 80, IPv4.
		// b: egress isolated, both families; only to r's /24 and /64 on
		// TCP 81.
		Isolated: [2][]netip.Addr{{netip.MustParseAddr(a4), netip.MustParseAddr(a6)}, {netip.MustParseAddr(b4), netip.MustParseAddr(b6)}},
		Rules: [2][]Rule{
			{{Pods: []netip.Addr{netip.MustParseAddr(a4)}, Peers: []netip.Prefix{pfx(r4 + "/32")}, Ports: []Port{{Proto: ProtoTCP, Lo: 80, Hi: 80}}}},
			{{Pods: []netip.Addr{netip.MustParseAddr(b4), netip.MustParseAddr(b6)}, Peers: []netip.Prefix{pfx("10.244.2.0/24"), pfx("fd00:10:244:2::/64")},
				Ports: []Port{{Proto: ProtoTCP, Lo: 81, Hi: 81}}}},
		},
	}
	p.Normalize()
	n, err := b.EnsurePolicy(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	// forward, input, out-1 (b), in-1 (a4), in-2 (a6, no rule); out-1's
	// two sets, in-1's one, and four pod maps; one element each, and in a
	// map per isolated address.
	if want := (PolicyObjects{Chains: 5, Sets: 7, Elements: 7}); n != want {
		t.Errorf("objects %+v, want %+v", n, want)
	}
	if held, err := b.PolicyHeld(ctx); err != nil || held != n {
		t.Errorf("PolicyHeld: %+v, %v; want what was written, %+v", held, err, n)
	}
	for _, c := range []struct {
		what           string
		from, to, addr string
		port           int
		want           bool
	}{
		{"r to a:80, allowed", pn.r, pn.a, a4, 80, true},
		{"r to a:81, no allow", pn.r, pn.a, a4, 81, false},
		{"b to a:80: b may not send, a may not receive", pn.b, pn.a, a4, 80, false},
		{"r to a over IPv6: isolated, no allow", pn.r, pn.a, a6, 80, false},
		{"b to r:81, allowed egress", pn.b, pn.r, r4, 81, true},
		{"b to r:80, no allow", pn.b, pn.r, r4, 80, false},
		{"a to r: a's egress is not isolated, the reply passes", pn.a, pn.r, r4, 80, true},
		{"a to r over IPv6", pn.a, pn.r, r6, 80, true},
		{"b to r over IPv6 on 81: neighbour discovery passes", pn.b, pn.r, r6, 81, true},
		{"b to the node: egress to the node is held to the rules", pn.b, pn.node, "10.244.1.1", 80, false},
		{"a to the node: a's egress is not isolated", pn.a, pn.node, "10.244.1.1", 80, true},
		{"the node to a, isolated for ingress: kubelet probes pass", pn.node, pn.a, a4, 80, true},
	} {
		if got := connects(t, c.from, c.to, c.addr, c.port); got != c.want {
			t.Errorf("%s: connected %v, want %v", c.what, got, c.want)
		}
	}
	listing := testenv.Run(t, pn.node, "nft", "list", "table", "inet", NFTPolicyTable)
	for _, want := range []string{"hook forward priority filter - 10", "hook input priority filter - 10",
		"ip daddr vmap @in-pods4", "ip6 daddr vmap @in-pods6", "10.244.1.3 : jump out-1", "fd00:10:244:1::2 : jump in-2",
		"elements = { 10.244.2.6 . tcp . 80 }", "elements = { 10.244.2.0/24 . tcp . 81 }", "ip daddr . meta l4proto . th dport @out-1-4 return",
		`counter name "ingress-drops" drop`, "counter ingress-drops"} {
		if !strings.Contains(listing, want) {
			t.Errorf("no %q in\n%s", want, listing)
		}
	}

	drops, err := b.PolicyDrops(ctx)
	if err != nil || drops[Ingress] == 0 || drops[Egress] == 0 {
		t.Errorf("PolicyDrops: %v, %v; want some each way", drops, err)
	}

	// A new policy replaces the old whole: a isolated no more.
	if _, err := b.EnsurePolicy(ctx, Policy{}); err != nil {
		t.Fatal(err)
	}
	if !connects(t, pn.b, pn.a, a4, 80) || !connects(t, pn.r, pn.a, a6, 81) {
		t.Error("an empty policy still filters")
	}
	if err := b.DeletePolicy(ctx); err != nil {
		t.Fatal(err)
	}
	if held, err := b.PolicyHeld(ctx); err != nil || held != (PolicyObjects{}) {
		t.Errorf("PolicyHeld with no table: %+v, %v", held, err)
	}
	if out := testenv.Run(t, pn.node, "nft", "list", "tables"); strings.Contains(out, NFTPolicyTable) {
		t.Errorf("table left after DeletePolicy: %s", out)
	}
	if err := b.DeletePolicy(ctx); err != nil {
		t.Errorf("second DeletePolicy: %v", err)
	}
}

// A table larger than one netlink message's element list, and than the
// socket's default buffer, goes in one transaction: 4,000 isolated
// addresses in one map and a class set of 4,000 peer ranges.
func TestKernelPolicyLarge(t *testing.T) {
	pn := newPolicyNet(t)
	b := nftOnlyIn(t, pn.node)
	ctx := context.Background()
	a4, r4 := netip.MustParseAddr("10.244.1.2"), netip.MustParsePrefix("10.244.2.6/32")
	var isolated []netip.Addr
	peers := []netip.Prefix{r4}
	for i := range 4000 {
		isolated = append(isolated, netip.AddrFrom4([4]byte{10, 245, byte(i / 250), byte(i % 250)}))
		// Every other address: ranges that never join.
		peers = append(peers, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 246, byte(i / 100), byte(2 * (i % 100))}), 32))
	}
	p := Policy{Isolated: [2][]netip.Addr{append(isolated, a4)}, Rules: [2][]Rule{{{Pods: append(isolated, a4), Peers: peers,
		Ports: []Port{{Proto: ProtoTCP, Lo: 80, Hi: 80}}}}}}
	p.Normalize()
	n, err := b.EnsurePolicy(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if n.Elements != 4001+4001 || n.Chains != 3 {
		t.Errorf("objects %+v, want 8,002 elements in 3 chains", n)
	}
	if held, err := b.PolicyHeld(ctx); err != nil || held != n {
		t.Errorf("PolicyHeld: %+v, %v; want what was written, %+v", held, err, n)
	}
	if !connects(t, pn.r, pn.a, a4.String(), 80) || connects(t, pn.r, pn.a, a4.String(), 81) || connects(t, pn.b, pn.a, a4.String(), 80) {
		t.Error("r reaches a on 80 only, b not at all: not so")
	}
	out := testenv.Run(t, pn.node, "nft", "list", "map", "inet", NFTPolicyTable, "in-pods4")
	if got := strings.Count(out, "jump in-1"); got != 4001 {
		t.Errorf("%d pods in map in-pods4, want 4,001", got)
	}
	// An element deleted by hand: the count says so.
	testenv.Run(t, pn.node, "nft", "delete", "element", "inet", NFTPolicyTable, "in-pods4", "{ 10.245.0.1 }")
	if held, err := b.PolicyHeld(ctx); err != nil || held.Elements != n.Elements-1 {
		t.Errorf("PolicyHeld after an element was deleted: %+v, %v", held, err)
	}
}
