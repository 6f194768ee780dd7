package rules

import (
	"bytes"
	"context"
	"crypto/sha256"
	"net/netip"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"golang.org/x/sys/unix"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// TestDigestExprsSkipsTrafficState: two rules that differ only in their
// counter's values digest alike; any other difference shows.
func TestDigestExprsSkipsTrafficState(t *testing.T) {
	expr := func(name string, data []byte) []byte {
		return nlAttr(unix.NFTA_LIST_ELEM, append(nlAttr(unix.NFTA_EXPR_NAME, cString(name)), nlAttr(unix.NFTA_EXPR_DATA, data)...))
	}
	rule := func(packets byte, verdict string) []byte {
		return bytes.Join([][]byte{expr("counter", []byte{0, 0, 0, packets}), expr("immediate", []byte(verdict))}, nil)
	}
	digest := func(b []byte) string {
		d := sha256.New()
		digestExprs(b, d)
		return string(d.Sum(nil))
	}
	if digest(rule(1, "accept")) != digest(rule(200, "accept")) {
		t.Error("counter values changed the digest")
	}
	if digest(rule(1, "accept")) == digest(rule(1, "drop")) {
		t.Error("another verdict left the digest unchanged")
	}
}

// TestFingerprintScope, in a netns of its own: the fingerprint of a
// network stays while other software's rules change, kube-proxy-style, and
// while its counters count; it moves with every change EnsureNetwork would
// read: its chains flushed, a rule replaced, a jump added from elsewhere,
// FORWARD's policy, its nftables chains.
func TestFingerprintScope(t *testing.T) {
	if iptablesVariant() != variantNFT {
		t.Skip("iptables here is not the nf_tables variant: Fingerprint is always empty")
	}
	name := testenv.NewNS(t, "fprint")
	n := Network{Name: "fp", Subnets: []netip.Prefix{netip.MustParsePrefix("10.99.0.0/16")}}
	in := func(f func() error) {
		t.Helper()
		if err := ns.WithNetNSPath(testenv.Path(name), func(ns.NetNS) error { return f() }); err != nil {
			t.Fatal(err)
		}
	}
	fprintOf := func() string {
		t.Helper()
		var s string
		in(func() (err error) { s, err = New(nil).Fingerprint(context.Background(), n); return err })
		return s
	}
	run := func(argv ...string) { t.Helper(); testenv.Run(t, name, argv...) }
	run("iptables", "-w", "-P", "FORWARD", "DROP")
	in(func() error { return New(nil).EnsureNetwork(context.Background(), n) })
	h := chainHash(n.Name)
	base := fprintOf()
	for _, other := range [][]string{
		{"iptables", "-w", "-t", "nat", "-N", "KUBE-SVC-X"},
		{"iptables", "-w", "-t", "nat", "-A", "KUBE-SVC-X", "-d", "198.18.7.7/32", "-j", "DNAT", "--to-destination", "198.18.8.8"},
		{"iptables", "-w", "-t", "nat", "-R", "KUBE-SVC-X", "1", "-d", "198.18.7.7/32", "-j", "DNAT", "--to-destination", "198.18.8.9"},
		{"nft", "add table ip kube-proxy; add chain ip kube-proxy svc; add rule ip kube-proxy svc counter accept"},
		// The same rule with other counter values: no change of rules.
		{"iptables", "-w", "-t", "nat", "-R", "NB-POST-" + h, "1", "-c", "7", "700", "-d", "10.99.0.0/16",
			"-m", "comment", "--comment", commentOf(t, name, h), "-j", "RETURN"},
	} {
		run(other...)
		if now := fprintOf(); now != base {
			t.Fatalf("fingerprint moved after %q", other)
		}
	}
	for _, ours := range [][]string{
		{"iptables", "-w", "-t", "nat", "-F", "NB-POST-" + h},
		{"iptables", "-w", "-t", "nat", "-A", "KUBE-SVC-X", "-j", "NB-POST-" + h},
		{"iptables", "-w", "-R", "NB-FWD-" + h, "1", "-s", "10.99.0.0/16", "-j", "DROP"},
		{"iptables", "-w", "-P", "FORWARD", "ACCEPT"},
		{"iptables", "-w", "-A", "FORWARD", "-j", "DROP"},
		{"nft", "add table inet nodebridge; add chain inet nodebridge fwd-" + h},
	} {
		run(ours...)
		if now := fprintOf(); now == base {
			t.Errorf("fingerprint unchanged after %q", ours)
		} else {
			base = now
		}
	}
}

// commentOf reads the comment match the network's rules carry, as
// iptables-save prints its value.
func commentOf(t *testing.T, netns, hash string) string {
	t.Helper()
	out := testenv.Run(t, netns, "iptables", "-w", "-t", "nat", "-S", "NB-POST-"+hash)
	_, after, ok := bytes.Cut([]byte(out), []byte(`--comment "`))
	if !ok {
		t.Fatalf("no comment in NB-POST-%s:\n%s", hash, out)
	}
	c, _, _ := bytes.Cut(after, []byte(`"`))
	return string(c)
}
