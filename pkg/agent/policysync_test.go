package agent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nodebridge/nodebridge/pkg/rules"
)

// recordingPolicy is a PolicyBackend that keeps what it was given.
type recordingPolicy struct {
	writes []rules.Policy
	fail   error
}

func (r *recordingPolicy) EnsurePolicy(_ context.Context, p rules.Policy) error {
	if r.fail != nil {
		return r.fail
	}
	r.writes = append(r.writes, p)
	return nil
}

func (r *recordingPolicy) DeletePolicy(context.Context) error { return nil }

// apply writes when the compiled policy changed, or when forced, and
// counts failures; the caches' objects are the input.
func TestPolicySyncApply(t *testing.T) {
	b := &recordingPolicy{}
	m := &Metrics{}
	s := newPolicySync("n1", b, slog.New(slog.NewTextHandler(io.Discard, nil)), m, time.Hour)
	pods, namespaces := policyWorld()
	for _, p := range pods {
		if err := s.pods.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range namespaces {
		if err := s.ns.Add(n); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	if err := s.apply(ctx, false); err != nil || len(b.writes) != 1 {
		t.Fatalf("first apply: %v, %d writes", err, len(b.writes))
	}
	if err := s.apply(ctx, false); err != nil || len(b.writes) != 1 {
		t.Errorf("nothing changed: %v, %d writes, want still 1", err, len(b.writes))
	}
	if err := s.policies.Add(policy("deny", sel(), ingressOnly, nil, nil)); err != nil {
		t.Fatal(err)
	}
	if err := s.apply(ctx, false); err != nil || len(b.writes) != 2 || len(b.writes[1].Isolated[rules.Ingress]) != 3 {
		t.Fatalf("a policy added: %v, %d writes %+v", err, len(b.writes), b.writes)
	}
	if err := s.apply(ctx, true); err != nil || len(b.writes) != 3 {
		t.Errorf("forced: %v, %d writes, want 3", err, len(b.writes))
	}
	b.fail = errors.New("no nftables")
	if err := s.apply(ctx, true); err == nil {
		t.Error("a failed write reported no error")
	}
	if m.policyErrors != 1 || m.policySyncs != 3 || m.policies != 1 || m.policyIsolated != 3 {
		t.Errorf("metrics: errors %d writes %d policies %d isolated %d", m.policyErrors, m.policySyncs, m.policies, m.policyIsolated)
	}
}
