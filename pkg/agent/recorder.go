package agent

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// The Event the agent records on a Node whose podCIDR it rejects. Node
// Events live in "default", as the kubelet's do.
const (
	eventReason    = "PodCIDRRejected"
	eventForeign   = "RouteConflict" // a peer's podCIDR held by another protocol's route
	eventPolicy    = "PolicyReadStrictly"
	eventComponent = "nodebridge-agent"
	eventQueue     = 256
)

// eventRecorder records a Warning Event on a Node for each podCIDR the
// agent rejects, once while the rejection lasts. A direct Create from one
// goroutine behind a bounded queue, rather than client-go's
// EventBroadcaster: no aggregation or rate limiting is needed for Events
// already deduplicated here, and a slow or failing API server delays or
// drops Events, never a reconcile.
type eventRecorder struct {
	client  kubernetes.Interface
	host    string // this node: source.host, and who does not route
	metrics *Metrics
	log     *slog.Logger
	now     func() time.Time
	queue   chan *corev1.Event
	sent    map[skipKey]bool // recorded, or queued; touched by the loop only
	lastErr string           // last Create failure logged; touched by run only
}

// skipKey identifies one rejection: the same prefix rejected for another
// reason, or a Node recreated with a new UID, is a new one.
type skipKey struct {
	uid                   types.UID
	node, podCIDR, reason string
}

func newEventRecorder(client kubernetes.Interface, host string, m *Metrics, log *slog.Logger) *eventRecorder {
	return &eventRecorder{client: client, host: host, metrics: m, log: log, now: time.Now,
		queue: make(chan *corev1.Event, eventQueue), sent: map[skipKey]bool{}}
}

// record queues an Event for each rejection not recorded yet and forgets
// those that ended, so a rejection that comes back is recorded again. A
// full queue drops the Event, counted; the next reconcile queues it again.
func (r *eventRecorder) record(skips []skip) {
	if r == nil {
		return
	}
	now := make(map[skipKey]bool, len(skips))
	for _, s := range skips {
		if s.reason == rejectNoUnderlay {
			// This node's fault, not the peer's, and /readyz names it: an
			// IPv6 address gone for a moment must not put an Event on
			// every Node of the cluster.
			continue
		}
		k := skipKey{uid: s.uid, node: s.node, podCIDR: s.podCIDR, reason: s.reason}
		if r.sent[k] || now[k] {
			now[k] = true
			continue
		}
		now[k] = r.enqueue(r.event(s))
	}
	r.sent = now
}

// enqueue queues ev for run, or, the queue full, drops it, counted, and
// reports false.
func (r *eventRecorder) enqueue(ev *corev1.Event) bool {
	select {
	case r.queue <- ev:
		return true
	default:
		r.metrics.update(func(m *Metrics) { m.apiErrors++; m.eventsFailed++ })
		return false
	}
}

// event is the Warning Event for s, on its Node.
func (r *eventRecorder) event(s skip) *corev1.Event {
	msg := fmt.Sprintf("podCIDR %s not routed by %s: %s", s.podCIDR, r.host, s.detail)
	if s.own {
		msg = fmt.Sprintf("podCIDR %s not used by %s on its own Node: %s", s.podCIDR, eventComponent, s.detail)
	}
	reason := eventReason
	if s.reason == rejectForeignRoute {
		reason = eventForeign
	}
	return r.warning(corev1.ObjectReference{APIVersion: "v1", Kind: "Node", Name: s.node, UID: s.uid}, reason, msg)
}

// policyProblem queues a Warning Event on the NetworkPolicy a problem
// is about, in its namespace; a full queue drops it, counted.
func (r *eventRecorder) policyProblem(pr policyProblem) {
	if r == nil {
		return
	}
	ref := corev1.ObjectReference{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy",
		Namespace: pr.namespace, Name: pr.name, UID: pr.uid}
	r.enqueue(r.warning(ref, eventPolicy, fmt.Sprintf("%s on %s enforces this policy strictly: %s", eventComponent, r.host, pr.detail)))
}

// run creates the queued Events until ctx ends.
func (r *eventRecorder) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-r.queue:
			r.create(ctx, ev)
		}
	}
}

// create sends one Event, with a deadline; a failure is counted (the
// request itself also in nodebridge_agent_api_errors_total) and logged
// when it differs from the last one.
// Equivalent to: kubectl create -f event.yaml
func (r *eventRecorder) create(ctx context.Context, ev *corev1.Event) {
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	_, err := r.client.CoreV1().Events(ev.Namespace).Create(ctx, ev, metav1.CreateOptions{})
	if err == nil {
		r.lastErr = ""
		return
	}
	r.metrics.update(func(m *Metrics) { m.eventsFailed++ })
	if err.Error() != r.lastErr {
		r.lastErr = err.Error()
		r.log.Warn("record Event", "reason", ev.Reason, "kind", ev.InvolvedObject.Kind, "name", ev.InvolvedObject.Name, "err", err)
	}
}

// warning is a Warning Event of the agent's on the object ref names, in
// that object's namespace, or in default for one without (a Node), where
// the kubelet's Node Events go too.
func (r *eventRecorder) warning(ref corev1.ObjectReference, reason, msg string) *corev1.Event {
	t := metav1.NewTime(r.now())
	ns := ref.Namespace
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{GenerateName: ref.Name + ".", Namespace: ns},
		InvolvedObject: ref,
		Reason:         reason,
		Message:        msg,
		Type:           corev1.EventTypeWarning,
		Source:         corev1.EventSource{Component: eventComponent, Host: r.host},
		FirstTimestamp: t,
		LastTimestamp:  t,
		Count:          1,
	}
}
