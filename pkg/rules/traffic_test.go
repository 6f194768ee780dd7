package rules

import (
	"context"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// trafficNet is a node netns routing between a "pod" netns on a pod subnet
// and an "outside" netns that has no route back to the pod subnets: a ping
// from pod to outside gets its reply only if the node masquerades it.
type trafficNet struct {
	node, pod, outside string
}

// newTrafficNet wires pod (10.99.0.2, fd00:99::2) and outside (192.0.2.2,
// 2001:db8::2) to node, which forwards between them.
func newTrafficNet(t *testing.T, node string) trafficNet {
	t.Helper()
	tn := trafficNet{node: node, pod: testenv.NewNS(t, "pod"), outside: testenv.NewNS(t, "out")}
	for _, l := range []struct{ ns, dev, peer, v4, v6, peer4, peer6 string }{
		{tn.pod, "vpod", "eth0", "10.99.0.1/24", "fd00:99::1/64", "10.99.0.2/24", "fd00:99::2/64"},
		{tn.outside, "vout", "eth0", "192.0.2.1/24", "2001:db8::1/64", "192.0.2.2/24", "2001:db8::2/64"},
	} {
		testenv.Run(t, node, "ip", "link", "add", l.dev, "type", "veth", "peer", "name", l.peer, "netns", l.ns)
		testenv.Run(t, node, "ip", "addr", "add", l.v4, "dev", l.dev)
		testenv.Run(t, node, "ip", "addr", "add", l.v6, "dev", l.dev, "nodad")
		testenv.Run(t, node, "ip", "link", "set", l.dev, "up")
		testenv.Run(t, l.ns, "ip", "addr", "add", l.peer4, "dev", l.peer)
		testenv.Run(t, l.ns, "ip", "addr", "add", l.peer6, "dev", l.peer, "nodad")
		testenv.Run(t, l.ns, "ip", "link", "set", l.peer, "up")
	}
	testenv.Run(t, tn.pod, "ip", "route", "add", "default", "via", "10.99.0.1")
	testenv.Run(t, tn.pod, "ip", "-6", "route", "add", "default", "via", "fd00:99::1")
	testenv.Run(t, node, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
	return tn
}

// pings reports, per family, whether a ping from pod to outside got its reply.
func (tn trafficNet) pings(t *testing.T) (v4, v6 bool) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Go(func() {
		v4 = exec.Command("ip", "netns", "exec", tn.pod, "ping", "-c", "1", "-W", "2", "192.0.2.2").Run() == nil
	})
	wg.Go(func() {
		v6 = exec.Command("ip", "netns", "exec", tn.pod, "ping", "-6", "-c", "1", "-W", "2", "2001:db8::2").Run() == nil
	})
	wg.Wait()
	return v4, v6
}

// legacyIn is an nftables backend programming node on a host whose
// iptables is iptables-legacy: its iptables commands are the -legacy ones.
func legacyIn(t *testing.T, node string) Backend {
	b := nftIn(t, node)
	b.variant = func() string { return variantLegacy }
	b.ipt.run = func(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
		name = strings.Replace(name, "tables-", "tables-legacy-", 1)
		return runCommand(ctx, stdin, "ip", append([]string{"netns", "exec", node, name}, args...)...)
	}
	return b
}

// TestKernelTraffic sends real packets through each backend's rules on
// nodes whose iptables FORWARD chain drops, by policy or by a rule: the
// outside can only answer the node's own address, so a reply proves the
// FORWARD accept and the masquerade alike. Without the rules, and after
// DeleteNetwork, nothing passes.
func TestKernelTraffic(t *testing.T) {
	iptables := func(t *testing.T, node string) Backend { b, _ := inNS(t, node); return b }
	nft := func(t *testing.T, node string) Backend { return nftIn(t, node) }
	for _, tc := range []struct {
		name    string
		backend func(t *testing.T, node string) Backend
		drop    [][]string // run in the node before the test
	}{
		{"iptables, policy DROP", iptables, policyDrop("iptables", "ip6tables")},
		{"nftables, policy DROP", nft, policyDrop("iptables", "ip6tables")},
		{"nftables, REJECT rule", nft, [][]string{
			{"iptables", "-w", "-A", "FORWARD", "-j", "REJECT"}, {"ip6tables", "-w", "-A", "FORWARD", "-j", "REJECT"}}},
		{"nftables, iptables-legacy policy DROP", legacyIn, policyDrop("iptables-legacy", "ip6tables-legacy")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // most of the time goes in pings that must time out
			node := testenv.NewNS(t, "node")
			for _, argv := range tc.drop {
				testenv.Run(t, node, argv...)
			}
			tn := newTrafficNet(t, node)
			b := tc.backend(t, node)
			n := Network{Name: "traffic", Subnets: prefixes("10.99.0.0/24", "fd00:99::/64")}
			if v4, v6 := tn.pings(t); v4 || v6 {
				t.Fatalf("without rules, ping answered (IPv4 %v, IPv6 %v): the node must drop, the outside must not route back", v4, v6)
			}
			if err := b.EnsureNetwork(t.Context(), n); err != nil {
				t.Fatalf("EnsureNetwork: %v", err)
			}
			if v4, v6 := tn.pings(t); !v4 || !v6 {
				t.Fatalf("with the rules, ping answered: IPv4 %v, IPv6 %v; want both", v4, v6)
			}
			if err := b.CheckNetwork(t.Context(), n); err != nil {
				t.Errorf("CheckNetwork: %v", err)
			}
			if _, ok := b.(*nftPrimary); ok {
				masqueradeCounted(t, node, n)
			}
			policyBesideRules(t, tn)
			if err := b.DeleteNetwork(t.Context(), n); err != nil {
				t.Fatalf("DeleteNetwork: %v", err)
			}
			// The policy table, allowing the pod out, is still there: its
			// return accepts nothing, so FORWARD's drop holds.
			if v4, v6 := tn.pings(t); v4 || v6 {
				t.Errorf("after DeleteNetwork, ping still answered (IPv4 %v, IPv6 %v)", v4, v6)
			}
		})
	}
}

// policyDrop is the commands setting the FORWARD policy to DROP with the
// given iptables and ip6tables.
func policyDrop(ipt, ip6t string) [][]string {
	return [][]string{{ipt, "-w", "-P", "FORWARD", "DROP"}, {ip6t, "-w", "-P", "FORWARD", "DROP"}}
}

// masqueradeCounted checks that n's nftables masquerade, not iptables',
// took the one new flow per family.
func masqueradeCounted(t *testing.T, node string, n Network) {
	t.Helper()
	out := testenv.Run(t, node, "nft", "list", "chain", "inet", "nodebridge", "post-"+chainHash(n.Name))
	for _, saddr := range []string{"ip saddr 10.99.0.0/24", "ip6 saddr fd00:99::/64"} {
		if !strings.Contains(out, saddr+" counter packets 1 ") {
			t.Errorf("masquerade rule %q did not count the one new flow:\n%s", saddr, out)
		}
	}
}

// policyBesideRules adds NetworkPolicy enforcement to a node whose
// plugin rules let the pod out: a policy allowing the outside keeps the
// pings answered, one isolating the pod's egress with no rule stops them;
// it leaves the allowing one in place.
func policyBesideRules(t *testing.T, tn trafficNet) {
	t.Helper()
	pol := nftOnlyIn(t, tn.node)
	pods := []netip.Addr{netip.MustParseAddr("10.99.0.2"), netip.MustParseAddr("fd00:99::2")}
	shut := Policy{Isolated: [2][]netip.Addr{nil, pods}}
	open := shut
	open.Rules[Egress] = []Rule{{Pods: pods, Peers: prefixes("192.0.2.0/24", "2001:db8::/64")}}
	for _, step := range []struct {
		what string
		p    Policy
		want bool
	}{{"egress allowed to the outside", open, true}, {"egress isolated, nothing allowed", shut, false}, {"allowed again", open, true}} {
		if _, err := pol.EnsurePolicy(t.Context(), step.p); err != nil {
			t.Fatalf("%s: EnsurePolicy: %v", step.what, err)
		}
		if v4, v6 := tn.pings(t); v4 != step.want || v6 != step.want {
			t.Errorf("%s: ping answered IPv4 %v, IPv6 %v; want %v", step.what, v4, v6, step.want)
		}
	}
}
