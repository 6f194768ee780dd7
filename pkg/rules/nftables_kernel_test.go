package rules

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// nftNS creates a throwaway netns and returns its name and an nftables
// backend that programs it; the machine's own ruleset is never touched.
func nftNS(t *testing.T) (string, *nftPrimary) {
	t.Helper()
	ns := testenv.NewNS(t, "nft")
	return ns, nftIn(t, ns)
}

// nftIn returns a new nftables backend as Select wires it, programming ns
// as a separate plugin process would have, its iptables commands run
// inside ns too.
func nftIn(t testing.TB, ns string) *nftPrimary {
	t.Helper()
	b := newNFTPrimary(t.Logf, ModeInstalled)
	b.nft = nftOnlyIn(t, ns)
	b.ipt, _ = inNS(t, ns)
	return b
}

// nftOnlyIn returns a new NFTables alone, without its share of iptables,
// programming ns.
func nftOnlyIn(t testing.TB, ns string) *NFTables {
	t.Helper()
	b := NewNFTables(t.Logf)
	b.netns = testenv.FD(t, ns)
	return b
}

// nftListing is table inet nodebridge in ns as nft lists it: each chain's
// trimmed lines by chain name (chains list in creation order, which means
// nothing), counter values dropped; nil when the table does not exist.
func nftListing(t *testing.T, ns string) map[string][]string {
	t.Helper()
	if !strings.Contains(testenv.Run(t, ns, "nft", "list", "tables"), "table inet nodebridge\n") {
		return nil
	}
	counterValues := regexp.MustCompile(`counter packets \d+ bytes \d+`)
	chains := map[string][]string{}
	chain := ""
	for l := range strings.Lines(testenv.Run(t, ns, "nft", "list", "table", "inet", "nodebridge")) {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "chain "):
			chain = strings.TrimSuffix(strings.TrimPrefix(l, "chain "), " {")
			chains[chain] = []string{}
		case l == "}":
			chain = ""
		case chain != "" && l != "":
			chains[chain] = append(chains[chain], counterValues.ReplaceAllString(l, "counter"))
		}
	}
	return chains
}

// listing is what nftListing shows of our table holding the chains given,
// each as a name, a header line, then rules, which get network's comment.
func listing(network string, chains ...[]string) map[string][]string {
	out := map[string][]string{}
	for _, c := range chains {
		out[c[0]] = []string{c[1]}
		for _, r := range c[2:] {
			out[c[0]] = append(out[c[0]], r+` comment "nodebridge: `+network+`"`)
		}
	}
	return out
}

const (
	natHeader    = "type nat hook postrouting priority srcnat; policy accept;"
	filterHeader = "type filter hook forward priority filter; policy accept;"
)

// nftGen reads the ruleset generation of b's netns, which every commit advances.
func nftGen(t *testing.T, b *NFTables) uint32 {
	t.Helper()
	gen, err := nftGeneration(b.netns)
	if err != nil {
		t.Fatalf("nftGeneration: %v", err)
	}
	return gen
}

func TestNFTKernelLifecycle(t *testing.T) {
	post, fwd := "post-11c844f95e", "fwd-11c844f95e" // of "mynet", see rules_test.go
	tests := []struct {
		name    string
		subnets []string
		want    map[string][]string
	}{
		{"ipv4", []string{"10.22.0.0/16"}, listing("mynet",
			[]string{post, natHeader, "ip daddr 10.22.0.0/16 return", "ip daddr 224.0.0.0/4 return", "ip saddr 10.22.0.0/16 counter masquerade"},
			[]string{fwd, filterHeader, "ip saddr 10.22.0.0/16 counter accept", "ip daddr 10.22.0.0/16 counter accept"})},
		{"ipv6", []string{"fd00:22::/64"}, listing("mynet",
			[]string{post, natHeader, "ip6 daddr fd00:22::/64 return", "ip6 daddr ff00::/8 return", "ip6 saddr fd00:22::/64 counter masquerade"},
			[]string{fwd, filterHeader, "ip6 saddr fd00:22::/64 counter accept", "ip6 daddr fd00:22::/64 counter accept"})},
		{"dual", []string{"fd00:22::/64", "10.22.0.0/16"}, listing("mynet",
			[]string{post, natHeader, "ip daddr 10.22.0.0/16 return", "ip daddr 224.0.0.0/4 return", "ip saddr 10.22.0.0/16 counter masquerade",
				"ip6 daddr fd00:22::/64 return", "ip6 daddr ff00::/8 return", "ip6 saddr fd00:22::/64 counter masquerade"},
			[]string{fwd, filterHeader, "ip saddr 10.22.0.0/16 counter accept", "ip daddr 10.22.0.0/16 counter accept",
				"ip6 saddr fd00:22::/64 counter accept", "ip6 daddr fd00:22::/64 counter accept"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns, b := nftNS(t)
			n := Network{Name: "mynet", Subnets: prefixes(tt.subnets...)}
			if err := b.EnsureNetwork(t.Context(), n); err != nil {
				t.Fatalf("EnsureNetwork: %v", err)
			}
			sameListing(t, "after Ensure", nftListing(t, ns), tt.want)
			gen := nftGen(t, b.nft)
			if err := b.EnsureNetwork(t.Context(), n); err != nil {
				t.Fatalf("second EnsureNetwork: %v", err)
			}
			if now := nftGen(t, b.nft); now != gen {
				t.Errorf("second EnsureNetwork committed: generation %d -> %d, want a read-only call", gen, now)
			}
			if err := b.CheckNetwork(t.Context(), n); err != nil {
				t.Errorf("CheckNetwork: %v", err)
			}
			testNFTRepair(t, ns, b, n, tt.want)
			testNFTDelete(t, ns, b, n)
		})
	}
}

func sameListing(t *testing.T, what string, got, want map[string][]string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: nft list table inet nodebridge:\ngot  %q\nwant %q", what, got, want)
	}
}

// testNFTRepair damages the chains of "mynet" in five ways, each of which
// Check must report and Ensure must undo.
func testNFTRepair(t *testing.T, ns string, b *nftPrimary, n Network, want map[string][]string) {
	t.Helper()
	post, fwd := "post-11c844f95e", "fwd-11c844f95e"
	for _, damage := range []string{
		"flush chain inet nodebridge " + post,
		"add rule inet nodebridge " + fwd + " drop",
		"delete chain inet nodebridge " + fwd,
		"delete chain inet nodebridge " + post + "; add chain inet nodebridge " + post + " { type nat hook postrouting priority 50; }",
		"add chain inet nodebridge " + fwd + " { type filter hook forward priority 0; policy drop; }",
	} {
		testenv.Run(t, ns, "nft", damage)
		if err := b.CheckNetwork(t.Context(), n); !errors.Is(err, ErrMissing) {
			t.Errorf("CheckNetwork after %q: got %v, want ErrMissing", damage, err)
		}
		if err := b.EnsureNetwork(t.Context(), n); err != nil {
			t.Fatalf("EnsureNetwork after %q: %v", damage, err)
		}
		if err := b.CheckNetwork(t.Context(), n); err != nil {
			t.Errorf("CheckNetwork after repairing %q: %v", damage, err)
		}
		sameListing(t, fmt.Sprintf("after repairing %q", damage), nftListing(t, ns), want)
	}
}

// testNFTDelete deletes n, which takes the table with it, twice.
func testNFTDelete(t *testing.T, ns string, b *nftPrimary, n Network) {
	t.Helper()
	for i := range 2 {
		gen := nftGen(t, b.nft)
		if err := b.DeleteNetwork(t.Context(), n); err != nil {
			t.Fatalf("DeleteNetwork #%d: %v", i+1, err)
		}
		sameListing(t, fmt.Sprintf("after DeleteNetwork #%d", i+1), nftListing(t, ns), nil)
		if now := nftGen(t, b.nft); i == 1 && now != gen {
			t.Errorf("DeleteNetwork of absent chains committed: generation %d -> %d", gen, now)
		}
	}
	if err := b.CheckNetwork(t.Context(), n); !errors.Is(err, ErrMissing) {
		t.Errorf("CheckNetwork after DeleteNetwork: got %v, want ErrMissing", err)
	}
}

// TestNFTKernelTwoNetworks runs the two-networks sequence on a node whose
// FORWARD policy is DROP: each network also has its iptables FORWARD
// chain, in the families it has subnets of, and loses it with its chains.
func TestNFTKernelTwoNetworks(t *testing.T) {
	ns := testenv.NewNode(t)
	b := nftIn(t, ns)
	one := Network{Name: "one", Subnets: prefixes("10.1.0.0/16", "fd00:1::/64")}
	two := Network{Name: "two", Subnets: prefixes("10.2.0.0/16", "10.3.0.0/24")}
	installTwoDeleteOne(t, b, one, two)
	sameLines(t, "two alone, IPv4", ourLines(t, ns, false), wantLines(forwardOnly(Rules(two)[0], true)))
	sameLines(t, "two alone, IPv6", ourLines(t, ns, true), nil)
	h := chainHash("two")
	sameListing(t, "two alone", nftListing(t, ns), listing("two",
		[]string{"post-" + h, natHeader, "ip daddr 10.2.0.0/16 return", "ip daddr 10.3.0.0/24 return", "ip daddr 224.0.0.0/4 return",
			"ip saddr 10.2.0.0/16 counter masquerade", "ip saddr 10.3.0.0/24 counter masquerade"},
		[]string{"fwd-" + h, filterHeader, "ip saddr 10.2.0.0/16 counter accept", "ip daddr 10.2.0.0/16 counter accept",
			"ip saddr 10.3.0.0/24 counter accept", "ip daddr 10.3.0.0/24 counter accept"}))
	if err := b.DeleteNetwork(t.Context(), two); err != nil {
		t.Fatalf("DeleteNetwork two: %v", err)
	}
	sameListing(t, "after deleting both", nftListing(t, ns), nil)
	sameLines(t, "after deleting both", ourLines(t, ns, false), nil)
}

func TestNFTKernelConcurrent(t *testing.T) {
	ns, b := nftNS(t)
	n := Network{Name: "mynet", Subnets: prefixes("10.44.0.0/16", "fd00:44::/64")}
	nftConcurrently(t, ns, "EnsureNetwork", func(b *nftPrimary) error { return b.EnsureNetwork(t.Context(), n) })
	if err := b.CheckNetwork(t.Context(), n); err != nil {
		t.Errorf("CheckNetwork after 8 concurrent Ensures: %v", err)
	}
	if got := nftListing(t, ns); len(got["post-11c844f95e"]) != 7 || len(got["fwd-11c844f95e"]) != 5 {
		t.Errorf("after 8 concurrent Ensures: %q, want a header and one set of rules per chain (6 and 4)", got)
	}
	nftConcurrently(t, ns, "DeleteNetwork", func(b *nftPrimary) error { return b.DeleteNetwork(t.Context(), n) })
	sameListing(t, "after 8 concurrent Deletes", nftListing(t, ns), nil)
}

// nftConcurrently runs op from 8 goroutines at once, each with its own
// backend and sockets, and fails t on any error.
func nftConcurrently(t *testing.T, ns, name string, op func(*nftPrimary) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		b := nftIn(t, ns)
		wg.Go(func() { errs[i] = op(b) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("%s #%d: %v", name, i, err)
		}
	}
}

// TestNFTKernelDeleteRacesEnsure deletes the last network of the table while
// another network's first Ensure runs: the table must go only if empty, so
// the other network's chains must survive every time.
func TestNFTKernelDeleteRacesEnsure(t *testing.T) {
	ns, b := nftNS(t)
	a := Network{Name: "a", Subnets: prefixes("10.1.0.0/16")}
	c := Network{Name: "c", Subnets: prefixes("10.3.0.0/16")}
	for i := range 20 {
		if err := b.EnsureNetwork(t.Context(), a); err != nil {
			t.Fatalf("round %d: EnsureNetwork a: %v", i, err)
		}
		var wg sync.WaitGroup
		var delErr, ensErr error
		deleter, ensurer := nftIn(t, ns), nftIn(t, ns)
		wg.Go(func() { delErr = deleter.DeleteNetwork(t.Context(), a) })
		wg.Go(func() { ensErr = ensurer.EnsureNetwork(t.Context(), c) })
		wg.Wait()
		if delErr != nil || ensErr != nil {
			t.Fatalf("round %d: DeleteNetwork a: %v; EnsureNetwork c: %v", i, delErr, ensErr)
		}
		if err := b.CheckNetwork(t.Context(), c); err != nil {
			t.Fatalf("round %d: c lost its chains to a's delete: %v", i, err)
		}
		if err := b.DeleteNetwork(t.Context(), c); err != nil {
			t.Fatalf("round %d: DeleteNetwork c: %v", i, err)
		}
	}
	sameListing(t, "after the rounds", nftListing(t, ns), nil)
}

// TestNFTKernelGenerationGuard: a batch read at an older generation is
// refused whole, which is what keeps delete from taking another network's
// chains down with the table.
func TestNFTKernelGenerationGuard(t *testing.T) {
	ns, b := nftNS(t)
	if err := b.EnsureNetwork(t.Context(), Network{Name: "a", Subnets: prefixes("10.1.0.0/16")}); err != nil {
		t.Fatalf("EnsureNetwork: %v", err)
	}
	raw, err := nftDial(t.Context(), b.nft.netns)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer raw.Close()
	gen, err := nftGeneration(b.nft.netns)
	if err != nil {
		t.Fatalf("nftGeneration: %v", err)
	}
	testenv.Run(t, ns, "nft", "add table inet other")
	del := []netlink.Message{nftDelTable(NFTTable)}
	if err := nftCommit(raw, gen, del); !errors.Is(err, unix.ERESTART) {
		t.Fatalf("commit at a stale generation: got %v, want ERESTART", err)
	}
	if nftListing(t, ns) == nil {
		t.Fatal("a refused batch deleted the table")
	}
	if gen, err = nftGeneration(b.nft.netns); err != nil {
		t.Fatalf("nftGeneration: %v", err)
	}
	if err := nftCommit(raw, gen, del); err != nil {
		t.Fatalf("commit at the current generation: %v", err)
	}
	sameListing(t, "after the current commit", nftListing(t, ns), nil)
}

// TestNFTKernelNoop: a network without subnets, or a canceled context,
// leaves the ruleset alone.
func TestNFTKernelNoop(t *testing.T) {
	ns, b := nftNS(t)
	gen := nftGen(t, b.nft)
	if err := b.EnsureNetwork(t.Context(), Network{Name: "empty"}); err != nil {
		t.Errorf("EnsureNetwork without subnets: %v", err)
	}
	if err := b.CheckNetwork(t.Context(), Network{Name: "empty"}); err != nil {
		t.Errorf("CheckNetwork without subnets: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	n := Network{Name: "mynet", Subnets: prefixes("10.22.0.0/16")}
	for name, op := range map[string]func(context.Context, Network) error{
		"EnsureNetwork": b.EnsureNetwork, "CheckNetwork": b.CheckNetwork,
	} {
		if err := op(ctx, n); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: got %v, want context.Canceled", name, err)
		}
	}
	if now := nftGen(t, b.nft); now != gen {
		t.Errorf("generation moved %d -> %d", gen, now)
	}
	sameListing(t, "after the no-ops", nftListing(t, ns), nil)
}
