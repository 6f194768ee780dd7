package rules

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// clusterLines is NB-AGENT-FWD of one family in ns: FORWARD's jumps to it,
// and its rules.
func clusterLines(t *testing.T, ns string, v6 bool) (jumps int, rules []string) {
	t.Helper()
	for l := range strings.Lines(nsRun(t, ns, familyName(v6)+"-save", "-t", "filter")) {
		l = strings.TrimSpace(l)
		switch {
		case l == "-A FORWARD -j "+clusterChain:
			jumps++
		case strings.HasPrefix(l, "-A "+clusterChain+" "):
			rules = append(rules, l)
		}
	}
	return jumps, rules
}

// The iptables backend writes the accepts in one restore per family that
// differs, and none when they are in place.
func TestKernelClusterIPTables(t *testing.T) {
	ns := kernelNS(t)
	b, _ := inNS(t, ns)
	var restores int
	run := b.run
	b.run = func(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
		if strings.HasSuffix(name, "-restore") {
			restores++
		}
		return run(ctx, stdin, name, args...)
	}
	a, c := []string{"10.244.0.0/16", "fd00:10:244::/56"}, []string{"10.240.0.0/12", "fd00:10::/48"}
	for _, s := range []struct {
		name         string
		cidrs        []string
		wantRestores int
	}{
		{"first apply: one restore per family", a, 2},
		{"same again: none", a, 0},
		{"new cluster CIDRs: one restore per family", c, 2},
	} {
		restores = 0
		cl := Cluster{Name: "nodebridge", CIDRs: prefixes(s.cidrs...)}
		if err := b.EnsureCluster(t.Context(), cl); err != nil || restores != s.wantRestores {
			t.Fatalf("%s: restores %d err %v, want %d", s.name, restores, err, s.wantRestores)
		}
		if err := b.CheckCluster(t.Context(), cl); err != nil {
			t.Errorf("%s: CheckCluster: %v", s.name, err)
		}
		for f, v6 := range []bool{false, true} {
			jumps, rules := clusterLines(t, ns, v6)
			if jumps != 1 || !slices.Equal(rules, renderCluster(v6, cl.CIDRs[f:f+1]).Chains[0].Rules) {
				t.Errorf("%s: %s: %d jumps, rules %q", s.name, familyName(v6), jumps, rules)
			}
		}
	}
	if err := b.DeleteCluster(t.Context(), Cluster{Name: "nodebridge"}); err != nil {
		t.Fatal(err)
	}
	for _, v6 := range []bool{false, true} {
		if text := nsRun(t, ns, familyName(v6)+"-save"); strings.Contains(text, clusterChain) {
			t.Errorf("chain left after removal:\n%s", text)
		}
	}
}

// Swapping the chain's contents never shows a reader an empty or
// half-filled chain: declaration and rules go in one iptables-restore
// commit.
func TestKernelClusterSwapAtomic(t *testing.T) {
	ns := kernelNS(t)
	b, _ := inNS(t, ns)
	ctx, cancel := context.WithCancel(t.Context())
	seen := make(chan []string, 1)
	go func() {
		defer close(seen)
		for ctx.Err() == nil {
			out, err := runCommand(context.Background(), nil, "ip", "netns", "exec", ns, "iptables-save", "-t", "filter")
			st := parseSave(out)
			if rules := st["filter"].chainRules(clusterChain); err == nil && len(st["filter"].jumpsTo(clusterChain)) > 0 && len(rules) != 5 {
				seen <- rules
				return
			}
		}
	}()
	sets := [][]string{{"10.244.0.0/16", "10.96.0.0/12"}, {"10.0.0.0/8", "10.96.0.0/12"}}
	for i := range 30 {
		if err := b.EnsureCluster(ctx, Cluster{Name: "nodebridge", CIDRs: prefixes(sets[i%2]...)}); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	if rules, ok := <-seen; ok {
		t.Errorf("a reader saw the chain half-swapped: %q", rules)
	}
}

// The nftables backend keeps the accepts in chain cluster-fwd, and
// NB-AGENT-FWD in iptables exactly where iptables' FORWARD drops; it takes
// over from the iptables backend's chain, and either backend's delete
// removes both.
func TestKernelClusterNFTables(t *testing.T) {
	for _, drop := range []bool{false, true} {
		t.Run(fmt.Sprintf("forward drops %v", drop), func(t *testing.T) {
			ns := testenv.NewNS(t, "cluster")
			if drop {
				testenv.Run(t, ns, "iptables", "-w", "-P", "FORWARD", "DROP")
			}
			cl := Cluster{Name: "nodebridge", CIDRs: prefixes("10.244.0.0/16", "fd00:10:244::/56")}
			ipt, _ := inNS(t, ns)
			viaIPT := &iptPrimary{ipt: ipt, nft: nftOnlyIn(t, ns)}
			viaNFT := nftIn(t, ns)
			if err := viaIPT.EnsureCluster(t.Context(), cl); err != nil {
				t.Fatal(err)
			}
			if err := viaNFT.EnsureCluster(t.Context(), cl); err != nil {
				t.Fatal(err)
			}
			if err := viaNFT.CheckCluster(t.Context(), cl); err != nil {
				t.Errorf("CheckCluster: %v", err)
			}
			want := map[string][]string{nftClusterChain: {"type filter hook forward priority filter; policy accept;",
				`ip saddr 10.244.0.0/16 counter accept comment "nodebridge: nodebridge"`,
				`ip daddr 10.244.0.0/16 counter accept comment "nodebridge: nodebridge"`,
				`ip6 saddr fd00:10:244::/56 counter accept comment "nodebridge: nodebridge"`,
				`ip6 daddr fd00:10:244::/56 counter accept comment "nodebridge: nodebridge"`}}
			sameListing(t, "nftables accepts", nftListing(t, ns), want)
			for _, v6 := range []bool{false, true} {
				jumps, rules := clusterLines(t, ns, v6)
				wantJumps := 0
				if drop && !v6 {
					wantJumps = 1
				}
				if jumps != wantJumps || (wantJumps == 1) != (len(rules) == 3) {
					t.Errorf("%s: %d jumps, rules %q, want %d jumps", familyName(v6), jumps, rules, wantJumps)
				}
			}
			for _, d := range []ClusterBackend{viaNFT, viaIPT} {
				if err := errors.Join(ipt.EnsureCluster(t.Context(), cl), viaNFT.nft.EnsureCluster(t.Context(), cl)); err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
				if err := d.DeleteCluster(ctx, Cluster{Name: "nodebridge"}); err != nil {
					t.Fatalf("%T DeleteCluster: %v", d, err)
				}
				cancel()
				sameListing(t, fmt.Sprintf("after %T DeleteCluster", d), nftListing(t, ns), nil)
				for _, v6 := range []bool{false, true} {
					if jumps, rules := clusterLines(t, ns, v6); jumps+len(rules) > 0 {
						t.Errorf("after %T DeleteCluster: %s: %d jumps, rules %q", d, familyName(v6), jumps, rules)
					}
				}
			}
		})
	}
}

// A command still running at its deadline is killed, and the error names
// the deadline's cause.
func TestRunCommandTimeout(t *testing.T) {
	ctx, cancel := context.WithTimeoutCause(t.Context(), 200*time.Millisecond, fmt.Errorf("after 200ms: %w", context.DeadlineExceeded))
	defer cancel()
	start := time.Now()
	_, err := runCommand(ctx, nil, "sleep", "30")
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("sleep 30 with a 200ms timeout returned after %s", took)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "after 200ms") {
		t.Errorf("got %v, want a deadline error", err)
	}
	if out, err := runCommand(t.Context(), []byte("x"), "cat"); err != nil || string(out) != "x" {
		t.Errorf("cat: %q %v", out, err)
	}
}

// TestKernelClusterForwardsDNAT: on a node whose FORWARD policy is DROP, a
// connection the node DNATed to an address outside the cluster CIDR (a
// Service's endpoint on a node's own address, under kube-proxy's nftables
// mode) is forwarded both ways, while the same traffic not DNATed stays
// dropped. The upstream spec "Networking Granular Checks: Services should
// function for service endpoints using hostNetwork" failed without it.
func TestKernelClusterForwardsDNAT(t *testing.T) {
	node := kernelNS(t)
	tn := newTrafficNet(t, node)
	b, _ := inNS(t, node)
	for _, argv := range [][]string{
		{"iptables", "-w", "-P", "FORWARD", "DROP"},
		// A Service IP taken to the outside address, and masqueraded, as
		// kube-proxy does for an endpoint off the cluster network.
		{"iptables", "-w", "-t", "nat", "-A", "PREROUTING", "-d", "10.96.0.50", "-j", "DNAT", "--to-destination", "192.0.2.2"},
		{"iptables", "-w", "-t", "nat", "-A", "POSTROUTING", "-d", "192.0.2.2", "-j", "MASQUERADE"},
	} {
		nsRun(t, node, argv...)
	}
	// The pod's 10.99.0.2 is outside this cluster CIDR: only the DNAT
	// accept can let its traffic through.
	if err := b.EnsureCluster(t.Context(), Cluster{Name: "nodebridge", CIDRs: prefixes("10.244.0.0/16")}); err != nil {
		t.Fatalf("EnsureCluster: %v", err)
	}
	ping := func(dst string) bool {
		return exec.Command("ip", "netns", "exec", tn.pod, "ping", "-c", "1", "-W", "2", dst).Run() == nil
	}
	if !ping("10.96.0.50") {
		t.Errorf("ping of the DNATed address through FORWARD DROP: no reply; want one (the DNAT accept)")
	}
	if ping("192.0.2.2") {
		t.Errorf("ping of the outside address, not DNATed, through FORWARD DROP: a reply; want none")
	}
}
