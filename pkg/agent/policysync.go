package agent

import (
	"context"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/nodebridge/nodebridge/pkg/rules"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/client-go/kubernetes"
)

// slimPod keeps what policy reads of a Pod.
func slimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	s := &corev1.Pod{}
	s.Name, s.Namespace, s.UID, s.ResourceVersion, s.Labels = p.Name, p.Namespace, p.UID, p.ResourceVersion, p.Labels
	s.Spec.NodeName, s.Spec.HostNetwork = p.Spec.NodeName, p.Spec.HostNetwork
	for _, c := range p.Spec.Containers {
		if len(c.Ports) > 0 {
			s.Spec.Containers = append(s.Spec.Containers, corev1.Container{Name: c.Name, Ports: c.Ports})
		}
	}
	s.Status.Phase, s.Status.PodIPs = p.Status.Phase, p.Status.PodIPs
	return s, nil
}

// slimNamespace keeps a Namespace's name and labels.
func slimNamespace(obj any) (any, error) {
	n, ok := obj.(*corev1.Namespace)
	if !ok {
		return obj, nil
	}
	s := &corev1.Namespace{}
	s.Name, s.UID, s.ResourceVersion, s.Labels = n.Name, n.UID, n.ResourceVersion, n.Labels
	return s, nil
}

// slimPolicy drops a NetworkPolicy's managed fields and annotations.
func slimPolicy(obj any) (any, error) {
	p, ok := obj.(*networkingv1.NetworkPolicy)
	if !ok {
		return obj, nil
	}
	s := &networkingv1.NetworkPolicy{Spec: p.Spec}
	s.Name, s.Namespace, s.UID, s.ResourceVersion = p.Name, p.Namespace, p.UID, p.ResourceVersion
	return s, nil
}

// policySync enforces NetworkPolicy for the node's pods: from the three
// caches, once each has its first list, it compiles the policy and writes
// it, as one transaction, when it changed, or at a resync when the
// kernel's table is no longer as written.
type policySync struct {
	node     string
	backend  rules.PolicyBackend
	events   *eventRecorder // nil: none recorded
	log      *slog.Logger
	metrics  *Metrics
	resync   time.Duration
	kick     chan struct{}
	pods     *watchCache
	ns       *watchCache
	policies *watchCache
	applied  *rules.Policy
	written  rules.PolicyObjects // what writing applied made
	dropBase [2]uint64           // drops counted by the tables written before, by Direction
	problems map[string]bool     // logged and recorded already
}

func newPolicySync(node string, backend rules.PolicyBackend, events *eventRecorder, log *slog.Logger, m *Metrics, resync time.Duration) *policySync {
	s := &policySync{node: node, backend: backend, events: events, log: log, metrics: m, resync: resync, kick: make(chan struct{}, 1), problems: map[string]bool{}}
	s.pods = newWatchCache(s.poke, slimPod)
	s.ns = newWatchCache(s.poke, slimNamespace)
	s.policies = newWatchCache(s.poke, slimPolicy)
	return s
}

func (s *policySync) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// run watches and enforces until ctx ends; the table stays in place
// after, so a restart opens no window without policy.
func (s *policySync) run(ctx context.Context, client kubernetes.Interface) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(3)
	go func() {
		defer wg.Done()
		pods := client.CoreV1().Pods("")
		listWatch(ctx, "pods", &corev1.Pod{}, s.pods, pods.List, pods.Watch)
	}()
	go func() {
		defer wg.Done()
		nss := client.CoreV1().Namespaces()
		listWatch(ctx, "namespaces", &corev1.Namespace{}, s.ns, nss.List, nss.Watch)
	}()
	go func() {
		defer wg.Done()
		pols := client.NetworkingV1().NetworkPolicies("")
		listWatch(ctx, "networkpolicies", &networkingv1.NetworkPolicy{}, s.policies, pols.List, pols.Watch)
	}()
	for _, c := range []*watchCache{s.pods, s.ns, s.policies} {
		select {
		case <-ctx.Done():
			return
		case <-c.synced:
		}
	}
	s.log.Info("network policy: pods, namespaces and policies listed; enforcing")
	s.loop(ctx)
}

// loop applies on every poke (coalesced) and every resync, retrying a
// failed write after a second.
func (s *policySync) loop(ctx context.Context) {
	tick := time.NewTicker(s.resync)
	defer tick.Stop()
	var retry <-chan time.Time
	apply := func(force bool) {
		if err := s.apply(ctx, force); err != nil {
			s.log.Warn("network policy: write failed; retrying", "err", err)
			retry = time.After(time.Second)
		}
	}
	apply(true)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
			apply(false)
		case <-tick.C:
			apply(true)
		case <-retry:
			retry = nil
			apply(true)
		}
	}
}

// apply compiles the policy and writes it when it differs from the one
// written last, or, when force (a resync), when the kernel no longer holds
// the objects written: an unchanged table keeps its counters. It reads
// the drop counters first, as a write starts them again from zero.
func (s *policySync) apply(ctx context.Context, force bool) error {
	start := time.Now()
	in := policyInput{node: s.node, pods: storeList[*corev1.Pod](s.pods.store),
		namespaces: storeList[*corev1.Namespace](s.ns.store), policies: storeList[*networkingv1.NetworkPolicy](s.policies.store)}
	p, problems := compilePolicy(in)
	for _, pr := range problems {
		if key := string(pr.uid) + " " + pr.String(); !s.problems[key] {
			s.problems[key] = true
			s.log.Warn("network policy: part of a policy read strictly", "policy", pr.namespace+"/"+pr.name, "problem", pr.detail)
			s.events.policyProblem(pr)
		}
	}
	s.metrics.update(func(m *Metrics) {
		m.policies = len(in.policies)
		m.policyIsolated = len(p.Isolated[rules.Ingress]) + len(p.Isolated[rules.Egress])
		m.policyRules = len(p.Rules[rules.Ingress]) + len(p.Rules[rules.Egress])
	})
	same := s.applied != nil && reflect.DeepEqual(*s.applied, p)
	if same && !force {
		return nil
	}
	drops, err := s.backend.PolicyDrops(ctx)
	if err != nil {
		s.log.Debug("network policy: drop counters unread", "err", err)
	}
	s.metrics.update(func(m *Metrics) {
		m.policyDrops = map[string]int{"ingress": int(s.dropBase[rules.Ingress] + drops[rules.Ingress]),
			"egress": int(s.dropBase[rules.Egress] + drops[rules.Egress])}
	})
	if same {
		held, err := s.backend.PolicyHeld(ctx)
		if err == nil && held == s.written {
			return nil
		}
		s.log.Warn("network policy: the kernel's table is not as written; writing it again", "held", held, "written", s.written, "err", err)
	}
	objs, err := s.backend.EnsurePolicy(ctx, p)
	if err != nil {
		s.metrics.update(func(m *Metrics) { m.policyErrors++ })
		return err
	}
	for d := range drops {
		s.dropBase[d] += drops[d]
	}
	s.applied, s.written = &p, objs
	took := time.Since(start)
	s.metrics.update(func(m *Metrics) {
		m.policySyncs, m.policyLast = m.policySyncs+1, took
		m.policyObjects = map[string]int{"chains": objs.Chains, "sets": objs.Sets, "elements": objs.Elements}
	})
	return nil
}
