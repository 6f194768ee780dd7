package agent

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// waitEvents lists the Events in "default" once there are want of them.
func waitEvents(t *testing.T, cs *fake.Clientset, want int) []corev1.Event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err := cs.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Items) >= want || time.Now().After(deadline) {
			return l.Items
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// namingClientset is a fake clientset that names created objects from
// their generateName, as the API server does and the fake does not.
func namingClientset() *fake.Clientset {
	cs := fake.NewClientset()
	n := 0
	cs.PrependReactor("create", "events", func(a k8stesting.Action) (bool, runtime.Object, error) {
		ev := a.(k8stesting.CreateAction).GetObject().(*corev1.Event)
		if ev.Name == "" {
			n++
			ev.Name = fmt.Sprintf("%s%05d", ev.GenerateName, n)
		}
		return false, nil, nil // on to the tracker
	})
	return cs
}

func TestEventRecorder(t *testing.T) {
	cs := namingClientset()
	m := &Metrics{}
	r := newEventRecorder(cs, "node-a", m, discard())
	r.now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	conn := skip{node: "node-h", uid: "uid-h", podCIDR: "198.18.0.0/25", reason: rejectOverlapsConnected,
		detail: "overlaps 198.18.0.0/24 connected on eth0"}
	outside := skip{node: "node-h", uid: "uid-h", podCIDR: "128.0.0.0/1", reason: rejectOutside, detail: "outside cluster CIDR 10.244.0.0/16"}
	r.record([]skip{conn, outside})
	r.record([]skip{conn, outside}) // a resync: nothing new
	evs := waitEvents(t, cs, 2)
	if len(evs) != 2 {
		t.Fatalf("got %d Events, want 2", len(evs))
	}
	msgs := []string{evs[0].Message, evs[1].Message}
	slices.Sort(msgs)
	if want := []string{"podCIDR 128.0.0.0/1 not routed by node-a: outside cluster CIDR 10.244.0.0/16",
		"podCIDR 198.18.0.0/25 not routed by node-a: overlaps 198.18.0.0/24 connected on eth0"}; !slices.Equal(msgs, want) {
		t.Errorf("messages:\n got %q\nwant %q", msgs, want)
	}
	ev := evs[0]
	want := corev1.ObjectReference{APIVersion: "v1", Kind: "Node", Name: "node-h", UID: "uid-h"}
	if ev.InvolvedObject != want || ev.Type != "Warning" || ev.Reason != "PodCIDRRejected" || ev.Namespace != "default" ||
		ev.Source != (corev1.EventSource{Component: "nodebridge-agent", Host: "node-a"}) || ev.Count != 1 ||
		!ev.FirstTimestamp.Equal(&metav1.Time{Time: r.now()}) || !strings.HasPrefix(ev.Name, "node-h.") {
		t.Errorf("event: %+v", ev)
	}

	r.record([]skip{conn})          // outside ended
	r.record([]skip{conn, outside}) // and came back: recorded again
	if evs := waitEvents(t, cs, 3); len(evs) != 3 {
		t.Errorf("after a rejection came back: %d Events, want 3", len(evs))
	}
	local := skip{node: "node-h", uid: "uid-h", podCIDR: "fd00:10:244:9::/64", reason: rejectNoUnderlay, detail: "no IPv6 underlay on this node"}
	own := skip{node: "node-a", uid: "uid-a", own: true, podCIDR: "0.0.0.0/0", reason: rejectZeroLength, detail: "zero length"}
	r.record([]skip{local, own}) // local: this node's own trouble, no Event on the peer
	evs = waitEvents(t, cs, 4)
	time.Sleep(50 * time.Millisecond) // room for a wrong fifth
	if evs = waitEvents(t, cs, 0); len(evs) != 4 {
		t.Fatalf("own and local rejections: %d Events, want 4 (own only)", len(evs))
	}
	for _, ev := range evs {
		if ev.InvolvedObject.Name == "node-a" && ev.Message != "podCIDR 0.0.0.0/0 not used by nodebridge-agent on its own Node: zero length" {
			t.Errorf("own Event: %q", ev.Message)
		}
	}
}

// A queue the API server does not drain: record drops and counts, and
// never blocks the reconcile.
func TestEventRecorderNeverBlocks(t *testing.T) {
	m := &Metrics{}
	r := newEventRecorder(fake.NewClientset(), "node-a", m, discard())
	r.queue = make(chan *corev1.Event, 1) // no run: nothing drains it
	skips := []skip{{node: "b", podCIDR: "1.0.0.0/8", reason: rejectOutside}, {node: "c", podCIDR: "2.0.0.0/8", reason: rejectOutside},
		{node: "d", podCIDR: "3.0.0.0/8", reason: rejectOutside}}
	done := make(chan struct{})
	go func() { r.record(skips); r.record(skips); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("record blocked on a full queue")
	}
	if m.eventsFailed != 4 || m.apiErrors != 4 || len(r.queue) != 1 {
		t.Errorf("dropped %d (api errors %d), queued %d; want 4 dropped and 1 queued", m.eventsFailed, m.apiErrors, len(r.queue))
	}
	var nilRecorder *eventRecorder
	nilRecorder.record(skips) // no API server: a no-op
}
