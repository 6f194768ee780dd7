package rules

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// kernelNS creates a throwaway netns for a real-ruleset test and returns
// its name; the machine's own tables are never touched.
func kernelNS(t *testing.T) string {
	t.Helper()
	return testenv.NewNS(t, "ipt")
}

// TestMain fails the run if the machine's own network changed.
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// inNS returns a backend whose commands run inside ns, and a count of its execs.
func inNS(t testing.TB, ns string) (*IPTables, *atomic.Int32) {
	t.Helper()
	b := New(t.Logf)
	var execs atomic.Int32
	b.run = func(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
		execs.Add(1)
		return runCommand(ctx, stdin, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
	}
	return b, &execs
}

// nsRun runs an iptables command inside ns for the test's own set-up.
func nsRun(t *testing.T, ns string, argv ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s in %s: %v: %s", strings.Join(argv, " "), ns, err, out)
	}
	return string(out)
}

// ourLines returns the lines of a save in ns that name a NB- chain, by
// table, in printed order: read with grep-like eyes, not with parseSave.
func ourLines(t *testing.T, ns string, v6 bool) map[string][]string {
	t.Helper()
	got := map[string][]string{}
	table := ""
	for line := range strings.Lines(nsRun(t, ns, familyName(v6)+"-save")) {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "*") {
			table = line[1:]
		}
		if strings.Contains(line, "NB-") {
			got[table] = append(got[table], line)
		}
	}
	return got
}

// wantLines is what ourLines must show for rs alone: the declaration, then
// the jump (built-in chains print first), then the chain's rules.
func wantLines(rs Ruleset) map[string][]string {
	want := map[string][]string{}
	for _, c := range rs.Chains {
		want[c.Table] = append([]string{":" + c.Name + " - [0:0]", c.Jump}, c.Rules...)
	}
	return want
}

func sameLines(t *testing.T, what string, got, want map[string][]string) {
	t.Helper()
	for _, table := range []string{"nat", "filter"} {
		if !slices.Equal(got[table], want[table]) {
			t.Errorf("%s: %s table:\ngot  %q\nwant %q", what, table, got[table], want[table])
		}
	}
}

func TestKernelLifecycle(t *testing.T) {
	for _, tc := range []struct {
		name    string
		subnets []string
	}{
		{"ipv4", []string{"10.22.0.0/16"}},
		{"ipv6", []string{"fd00:22::/64"}},
		{"dual", []string{"10.22.0.0/16", "fd00:22::/64"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := kernelNS(t)
			b, execs := inNS(t, ns)
			ctx := t.Context()
			n := Network{Name: "kern-" + tc.name, Subnets: prefixes(tc.subnets...)}
			if err := b.EnsureNetwork(ctx, n); err != nil {
				t.Fatalf("EnsureNetwork: %v", err)
			}
			for _, rs := range Rules(n) {
				sameLines(t, "after Ensure", ourLines(t, ns, rs.IPv6), wantLines(rs))
			}
			execs.Store(0)
			if err := b.EnsureNetwork(ctx, n); err != nil {
				t.Fatalf("second EnsureNetwork: %v", err)
			}
			if got, want := execs.Load(), int32(len(Rules(n))); got != want {
				t.Errorf("second EnsureNetwork ran %d commands, want %d (one save per family)", got, want)
			}
			for _, rs := range Rules(n) {
				sameLines(t, "after second Ensure", ourLines(t, ns, rs.IPv6), wantLines(rs))
				testRepair(t, ns, b, n, rs)
			}
			testDelete(t, ns, b, n)
		})
	}
}

// testRepair damages rs in three ways, each of which Check must report and
// Ensure must undo.
func testRepair(t *testing.T, ns string, b *IPTables, n Network, rs Ruleset) {
	t.Helper()
	tool := familyName(rs.IPv6)
	post, fwd := rs.Chains[0], rs.Chains[1]
	for _, damage := range [][]string{
		{tool, "-w", "-t", "nat", "-F", post.Name},
		{tool, "-w", "-t", "filter", "-D", "FORWARD", "-m", "comment", "--comment", "nodebridge: " + n.Name, "-j", fwd.Name},
		{tool, "-w", "-t", "nat", "-A", "POSTROUTING", "-m", "comment", "--comment", "nodebridge: " + n.Name, "-j", post.Name},
		{tool, "-w", "-t", "filter", "-A", fwd.Name, "-j", "DROP"},
	} {
		nsRun(t, ns, damage...)
		err := b.CheckNetwork(t.Context(), n)
		if !errors.Is(err, ErrMissing) {
			t.Errorf("CheckNetwork after %q: got %v, want ErrMissing", damage, err)
		}
		if err := b.EnsureNetwork(t.Context(), n); err != nil {
			t.Fatalf("EnsureNetwork after %q: %v", damage, err)
		}
		if err := b.CheckNetwork(t.Context(), n); err != nil {
			t.Errorf("CheckNetwork after repairing %q: %v", damage, err)
		}
		sameLines(t, fmt.Sprintf("after repairing %q", damage), ourLines(t, ns, rs.IPv6), wantLines(rs))
	}
}

// testDelete removes n and checks nothing named NB- is left, twice.
func testDelete(t *testing.T, ns string, b *IPTables, n Network) {
	t.Helper()
	for i := range 2 {
		if err := b.DeleteNetwork(t.Context(), n); err != nil {
			t.Fatalf("DeleteNetwork #%d: %v", i+1, err)
		}
		for _, v6 := range []bool{false, true} {
			sameLines(t, fmt.Sprintf("after DeleteNetwork #%d", i+1), ourLines(t, ns, v6), nil)
		}
	}
}

func TestKernelTwoNetworks(t *testing.T) {
	ns := testenv.NewNode(t) // FORWARD policy DROP, as for the nftables backend's sequence
	b, _ := inNS(t, ns)
	one := Network{Name: "one", Subnets: prefixes("10.1.0.0/16", "fd00:1::/64")}
	two := Network{Name: "two", Subnets: prefixes("10.2.0.0/16", "10.3.0.0/24", "fd00:2::/64")}
	installTwoDeleteOne(t, b, one, two)
	for _, rs := range Rules(two) {
		sameLines(t, "two alone", ourLines(t, ns, rs.IPv6), wantLines(rs))
	}
}

func TestKernelConcurrent(t *testing.T) {
	ns := kernelNS(t)
	n := Network{Name: "race", Subnets: prefixes("10.44.0.0/16", "fd00:44::/64")}
	concurrently(t, "EnsureNetwork", func(b *IPTables) error { return b.EnsureNetwork(t.Context(), n) }, ns)
	for _, rs := range Rules(n) {
		sameLines(t, "after 8 concurrent Ensures", ourLines(t, ns, rs.IPv6), wantLines(rs))
	}
	concurrently(t, "DeleteNetwork", func(b *IPTables) error { return b.DeleteNetwork(t.Context(), n) }, ns)
	for _, v6 := range []bool{false, true} {
		sameLines(t, "after 8 concurrent Deletes", ourLines(t, ns, v6), nil)
	}
}

// concurrently runs op from 8 goroutines at once, each with its own backend
// as separate plugin processes would have, and fails t on any error.
func concurrently(t *testing.T, name string, op func(*IPTables) error, ns string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		b, _ := inNS(t, ns)
		wg.Go(func() { errs[i] = op(b) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("%s #%d: %v", name, i, err)
		}
	}
}

// installTwoDeleteOne installs networks one and two with b, checks both,
// deletes one and checks that two is still whole.
func installTwoDeleteOne(t *testing.T, b Backend, one, two Network) {
	t.Helper()
	ctx := t.Context()
	for _, n := range []Network{one, two} {
		if err := b.EnsureNetwork(ctx, n); err != nil {
			t.Fatalf("EnsureNetwork %s: %v", n.Name, err)
		}
	}
	for _, n := range []Network{one, two} {
		if err := b.CheckNetwork(ctx, n); err != nil {
			t.Errorf("CheckNetwork %s with both installed: %v", n.Name, err)
		}
	}
	if err := b.DeleteNetwork(ctx, one); err != nil {
		t.Fatalf("DeleteNetwork one: %v", err)
	}
	if err := b.CheckNetwork(ctx, two); err != nil {
		t.Errorf("CheckNetwork two after deleting one: %v", err)
	}
}

// TestKernelBelowKubeProxy: on a node whose kube-proxy (iptables mode)
// already hooked FORWARD, the network's jump goes below kube-proxy's, so
// that its reject of a Service without endpoints, its drop of INVALID
// packets and its load balancer source ranges see pod traffic before our
// accepts do (the upstream e2e specs "Services should be rejected when no
// endpoints exist" and the invalid conntrack state one failed without);
// Check reports a jump found above them and Ensure moves it.
func TestKernelBelowKubeProxy(t *testing.T) {
	ns := kernelNS(t)
	b, _ := inNS(t, ns)
	n := Network{Name: "kern-kube", Subnets: prefixes("10.22.0.0/16")}
	fwd := Rules(n)[0].Chains[1]
	// What kube-proxy's iptables mode hooks into FORWARD, in its order.
	for _, argv := range [][]string{
		{"iptables", "-w", "-N", "KUBE-PROXY-FIREWALL"}, {"iptables", "-w", "-N", "KUBE-FORWARD"}, {"iptables", "-w", "-N", "KUBE-SERVICES"},
		{"iptables", "-w", "-A", "FORWARD", "-m", "conntrack", "--ctstate", "NEW", "-j", "KUBE-PROXY-FIREWALL"},
		{"iptables", "-w", "-A", "FORWARD", "-j", "KUBE-FORWARD"},
		{"iptables", "-w", "-A", "FORWARD", "-m", "conntrack", "--ctstate", "NEW", "-j", "KUBE-SERVICES"},
	} {
		nsRun(t, ns, argv...)
	}
	jumps := func() []string {
		var out []string
		for _, l := range strings.Split(nsRun(t, ns, "iptables", "-w", "-S", "FORWARD"), "\n") {
			if f := strings.Fields(l); len(f) > 0 && f[0] == "-A" {
				out = append(out, f[len(f)-1])
			}
		}
		return out
	}
	want := []string{"KUBE-PROXY-FIREWALL", "KUBE-FORWARD", "KUBE-SERVICES", fwd.Name}
	if err := b.EnsureNetwork(t.Context(), n); err != nil {
		t.Fatalf("EnsureNetwork: %v", err)
	}
	if got := jumps(); !slices.Equal(got, want) {
		t.Errorf("FORWARD jumps after Ensure: %q, want %q", got, want)
	}
	// An older nodebridge put its jump at the top.
	nsRun(t, ns, "iptables", "-w", "-D", "FORWARD", "-m", "comment", "--comment", "nodebridge: "+n.Name, "-j", fwd.Name)
	nsRun(t, ns, "iptables", "-w", "-I", "FORWARD", "1", "-m", "comment", "--comment", "nodebridge: "+n.Name, "-j", fwd.Name)
	if err := b.CheckNetwork(t.Context(), n); !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "kube-proxy") {
		t.Errorf("CheckNetwork with the jump above kube-proxy's: %v, want ErrMissing naming kube-proxy", err)
	}
	if err := b.EnsureNetwork(t.Context(), n); err != nil {
		t.Fatalf("EnsureNetwork: %v", err)
	}
	if got := jumps(); !slices.Equal(got, want) {
		t.Errorf("FORWARD jumps after Ensure moved it: %q, want %q", got, want)
	}
}
