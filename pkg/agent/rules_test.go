package agent

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nodebridge/nodebridge/pkg/rules"
	"github.com/vishvananda/netns"
)

// stamped is a rules.Fake with a stamp and a fingerprint the test moves,
// counting their reads.
type stamped struct {
	rules.Fake
	st, fp       string
	stamps, fps  int
	ensureBlocks bool // EnsureCluster waits for its ctx to end
}

func (s *stamped) Stamp(context.Context) (string, error) { s.stamps++; return s.st, nil }

func (s *stamped) FingerprintCluster(context.Context, rules.Cluster) (string, error) {
	s.fps++
	return s.fp, nil
}

func (s *stamped) EnsureCluster(ctx context.Context, c rules.Cluster) error {
	if s.ensureBlocks {
		<-ctx.Done()
		return context.Cause(ctx)
	}
	return s.Fake.EnsureCluster(ctx, c)
}

// A reconcile with unchanged cluster CIDRs touches nothing; a verify
// ensures only when the stamp and the fingerprint both moved.
func TestRuleSync(t *testing.T) {
	b := &stamped{st: "gen 1", fp: "fp 1"}
	rs := ruleSyncer{backend: b, network: "nodebridge", log: discard()}
	ctx := context.Background()
	cidrs := pfx(t, "10.244.0.0/16")
	ensures := func() int { return b.Calls(rules.OpEnsureCluster) }
	steps := []struct {
		name        string
		cidrs       string
		verify      bool
		st, fp      string
		wantEnsures int
	}{
		{"first apply", "10.244.0.0/16", false, "gen 1", "fp 1", 1},
		{"unchanged CIDRs, no verify", "10.244.0.0/16", false, "gen 2", "fp 2", 1},
		{"verify, stamp unchanged", "10.244.0.0/16", true, "gen 1", "fp 2", 1},
		{"verify, others' rules changed", "10.244.0.0/16", true, "gen 2", "fp 1", 1},
		{"verify, stamp as recorded", "10.244.0.0/16", true, "gen 2", "fp 9", 1},
		{"verify, the accepts changed", "10.244.0.0/16", true, "gen 3", "fp 3", 2},
		{"new CIDRs", "10.240.0.0/12", false, "gen 3", "fp 3", 3},
	}
	for _, s := range steps {
		b.st, b.fp = s.st, s.fp
		if err := rs.sync(ctx, pfx(t, s.cidrs), s.verify); err != nil || ensures() != s.wantEnsures {
			t.Fatalf("%s: ensures %d err %v, want %d", s.name, ensures(), err, s.wantEnsures)
		}
	}
	if c, ok := b.Cluster(); !ok || c.Name != "nodebridge" || c.CIDRs[0] != pfx(t, "10.240.0.0/12")[0] {
		t.Errorf("cluster as ensured: %+v %v", c, ok)
	}
	b.SetErr(rules.OpEnsureCluster, errors.New("exit status 4: xtables lock"))
	b.st = "gen 4"
	if err := rs.sync(ctx, cidrs, true); err == nil || !strings.Contains(err.Error(), "xtables lock") {
		t.Errorf("a failing ensure: got %v", err)
	}
	stamps := b.stamps
	if err := rs.sync(ctx, cidrs, false); err == nil || b.stamps != stamps+1 {
		t.Errorf("after a failure, the next pass must ensure again: err %v", err)
	}
}

// The families whose iptables tools are missing are skipped and counted.
func TestRuleSyncMissingTools(t *testing.T) {
	b := &missingTools{}
	rs := ruleSyncer{backend: b, log: discard()}
	if err := rs.sync(context.Background(), pfx(t, "10.244.0.0/16"), false); err != nil {
		t.Fatalf("missing iptables must be skipped, got %v", err)
	}
	if strings.Join(rs.missing, ",") != "iptables" {
		t.Errorf("missing: got %v, want IPv4 only", rs.missing)
	}
}

// missingTools is a backend whose iptables has no tools for IPv4.
type missingTools struct{ rules.Fake }

func (m *missingTools) EnsureCluster(ctx context.Context, c rules.Cluster) error {
	_ = m.Fake.EnsureCluster(ctx, c) // records the call; never fails here
	return &rules.NotInstalledError{Tools: []string{"iptables"}}
}

// An ensure that outlives its deadline fails the pass, named as timed out.
func TestRuleSyncTimeout(t *testing.T) {
	rs := ruleSyncer{backend: &stamped{ensureBlocks: true}, log: discard(), timeout: 200 * time.Millisecond}
	start := time.Now()
	err := rs.sync(context.Background(), pfx(t, "10.244.0.0/16"), false)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("a hung ensure with a 200ms timeout returned after %s", took)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "after 200ms") {
		t.Errorf("got %v, want a deadline error", err)
	}
}

// nsRules is the rules backend the agent would choose on th's node, chosen
// and run inside th's netns: each call on a thread of its own that enters
// the netns, so the backend's execs and netlink sockets are all there.
type nsRules struct {
	ns netns.NsHandle
	b  rules.ClusterBackend
}

var _ rules.ClusterFingerprinter = (*nsRules)(nil)

// inNetns runs f on a new thread in ns; the thread ends with it.
func inNetns(ns netns.NsHandle, f func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := netns.Set(ns); err != nil {
			done <- err
			return
		}
		done <- f()
	}()
	return <-done
}

// rulesIn returns the backend named (rules.SelectCluster's name) as chosen
// in ns.
func rulesIn(t testing.TB, ns netns.NsHandle, name string) *nsRules {
	t.Helper()
	r := &nsRules{ns: ns}
	if err := inNetns(ns, func() (err error) { r.b, err = rules.SelectCluster(name, rules.ModeInstalled, t.Logf); return err }); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *nsRules) EnsureCluster(ctx context.Context, c rules.Cluster) error {
	return inNetns(r.ns, func() error { return r.b.EnsureCluster(ctx, c) })
}

func (r *nsRules) DeleteCluster(ctx context.Context, c rules.Cluster) error {
	return inNetns(r.ns, func() error { return r.b.DeleteCluster(ctx, c) })
}

func (r *nsRules) CheckCluster(ctx context.Context, c rules.Cluster) error {
	return inNetns(r.ns, func() error { return r.b.CheckCluster(ctx, c) })
}

func (r *nsRules) Stamp(ctx context.Context) (s string, err error) {
	err = inNetns(r.ns, func() error { s, err = r.b.(rules.ClusterFingerprinter).Stamp(ctx); return err })
	return s, err
}

func (r *nsRules) FingerprintCluster(ctx context.Context, c rules.Cluster) (s string, err error) {
	err = inNetns(r.ns, func() error { s, err = r.b.(rules.ClusterFingerprinter).FingerprintCluster(ctx, c); return err })
	return s, err
}
