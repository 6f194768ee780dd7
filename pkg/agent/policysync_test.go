package agent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nodebridge/nodebridge/pkg/rules"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// recordingPolicy is a PolicyBackend that keeps what it was given; the
// kernel holds what it last wrote unless held says otherwise.
type recordingPolicy struct {
	writes []rules.Policy
	fail   error
	held   *rules.PolicyObjects
}

func (r *recordingPolicy) PolicyHeld(context.Context) (rules.PolicyObjects, error) {
	if r.held != nil {
		return *r.held, nil
	}
	return rules.PolicyObjects{Chains: len(r.writes)}, nil
}

func (r *recordingPolicy) EnsurePolicy(_ context.Context, p rules.Policy) (rules.PolicyObjects, error) {
	if r.fail != nil {
		return rules.PolicyObjects{}, r.fail
	}
	r.writes = append(r.writes, p)
	return rules.PolicyObjects{Chains: len(r.writes)}, nil
}

func (r *recordingPolicy) DeletePolicy(context.Context) error { return nil }

// PolicyDrops counts 5 each way per write, as if each table dropped 5.
func (r *recordingPolicy) PolicyDrops(context.Context) ([2]uint64, error) {
	if len(r.writes) == 0 {
		return [2]uint64{}, nil
	}
	return [2]uint64{5, 5}, nil
}

// apply writes when the compiled policy changed, or when forced, and
// counts failures; the caches' objects are the input.
func TestPolicySyncApply(t *testing.T) {
	b := &recordingPolicy{}
	m := &Metrics{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rec := newEventRecorder(namingClientset(), "n1", m, log)
	s := newPolicySync("n1", b, rec, log, m, time.Hour)
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
	if err := s.apply(ctx, true); err != nil || len(b.writes) != 2 {
		t.Errorf("resync with the table as written: %v, %d writes, want still 2", err, len(b.writes))
	}
	b.held = &rules.PolicyObjects{} // deleted by hand
	if err := s.apply(ctx, true); err != nil || len(b.writes) != 3 {
		t.Errorf("resync with the table gone: %v, %d writes, want 3", err, len(b.writes))
	}
	b.fail = errors.New("no nftables")
	if err := s.apply(ctx, true); err == nil {
		t.Error("a failed write reported no error")
	}
	if m.policyErrors != 1 || m.policySyncs != 3 || m.policies != 1 || m.policyIsolated != 3 || m.policyObjects["chains"] != 3 {
		t.Errorf("metrics: errors %d writes %d policies %d isolated %d objects %v", m.policyErrors, m.policySyncs, m.policies, m.policyIsolated, m.policyObjects)
	}
	// Three tables written dropped 5 each way; the fourth write failed,
	// after its read of the third's counters.
	if m.policyDrops["ingress"] != 15 || m.policyDrops["egress"] != 15 {
		t.Errorf("drops %v, want 15 each way", m.policyDrops)
	}
	// A part read strictly: one Warning Event on the policy, in its
	// namespace, however often it is compiled.
	bad := policy("bad", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Near"}}}, ingressOnly, nil, nil)
	bad.UID = "u-bad"
	if err := s.policies.Add(bad); err != nil {
		t.Fatal(err)
	}
	b.fail = nil
	for range 2 {
		if err := s.apply(ctx, true); err != nil {
			t.Fatal(err)
		}
	}
	if len(rec.queue) != 1 {
		t.Fatalf("%d Events queued, want 1", len(rec.queue))
	}
	ev := <-rec.queue
	if ev.Namespace != "default" || ev.InvolvedObject.Kind != "NetworkPolicy" || ev.InvolvedObject.Name != "bad" ||
		ev.InvolvedObject.UID != "u-bad" || ev.Reason != "PolicyReadStrictly" || ev.Type != corev1.EventTypeWarning ||
		!strings.Contains(ev.Message, `podSelector: "Near" is not a valid label selector operator: applied to every pod of the namespace`) {
		t.Errorf("Event %+v", ev)
	}
	// A policy selecting none of n1's pods changes no table, but is counted.
	writes := len(b.writes)
	if err := s.policies.Add(policy("nobody", sel("app", "none"), ingressOnly, nil, nil)); err != nil {
		t.Fatal(err)
	}
	if err := s.apply(ctx, false); err != nil || len(b.writes) != writes || m.policies != 3 {
		t.Errorf("a policy selecting nobody here: %v, %d writes (want %d), %d policies counted (want 3)", err, len(b.writes), writes, m.policies)
	}
}

// lockedPolicy is recordingPolicy safe for the run loop's goroutine.
type lockedPolicy struct {
	mu sync.Mutex
	recordingPolicy
}

func (l *lockedPolicy) EnsurePolicy(ctx context.Context, p rules.Policy) (rules.PolicyObjects, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.recordingPolicy.EnsurePolicy(ctx, p)
}

func (l *lockedPolicy) PolicyDrops(ctx context.Context) ([2]uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.recordingPolicy.PolicyDrops(ctx)
}

func (l *lockedPolicy) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.writes)
}

// Nothing is written until Pods, Namespaces and NetworkPolicies are all
// listed: with the policies' list held back, a table written from the
// pods alone would open what the policies isolate.
func TestPolicySyncWaitsForLists(t *testing.T) {
	pods, namespaces := policyWorld()
	var objs []runtime.Object
	for _, p := range pods {
		objs = append(objs, p)
	}
	for _, n := range namespaces {
		objs = append(objs, n)
	}
	objs = append(objs, policy("deny", sel(), ingressOnly, nil, nil))
	cs := fake.NewClientset(objs...)
	release := make(chan struct{})
	cs.PrependReactor("list", "networkpolicies", func(k8stesting.Action) (bool, runtime.Object, error) {
		<-release
		return false, nil, nil // on to the fake's own list
	})
	b := &lockedPolicy{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := newPolicySync("n1", b, nil, log, &Metrics{}, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.run(ctx, cs); close(done) }()
	defer func() { cancel(); <-done }()
	time.Sleep(300 * time.Millisecond)
	if n := b.count(); n != 0 {
		t.Fatalf("%d writes before the policies were listed", n)
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for b.count() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.writes) == 0 || len(b.writes[0].Isolated[rules.Ingress]) != 3 {
		t.Fatalf("after the lists: writes %+v, want the first to isolate the 3 addresses of n1's pods", b.writes)
	}
}
