package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// TestWaitEventSeesTheRoute: a route added in the node netns after the
// wait began is reported at the event's arrival, long before the slow
// fallback listing would have seen it, and a route already there at once.
func TestWaitEventSeesTheRoute(t *testing.T) {
	node := testenv.NewNode(t)
	testenv.Run(t, node, "ip", "link", "add", "up0", "up", "type", "veth", "peer", "name", "up1")
	testenv.Run(t, node, "ip", "link", "set", "up1", "up")
	testenv.Run(t, node, "ip", "addr", "add", "198.19.0.1/24", "dev", "up0")
	w, err := openRoutes(node)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	w.anyProto = true
	events, stop, err := w.subscribe()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	want := routeSet{podCIDR(1): peerIP(1)}
	added := make(chan time.Time, 1)
	go func() {
		time.Sleep(20 * time.Millisecond)
		at := time.Now()
		testenv.Run(t, node, "ip", "route", "add", podCIDR(1).String(), "via", peerIP(1).String())
		added <- at
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	m := w.waitEvent(ctx, want, events, time.Hour) // no listing but the events'
	if m.err != nil {
		t.Fatal(m.err)
	}
	if at := <-added; m.at.Before(at) || m.at.Sub(start) > 5*time.Second {
		t.Errorf("matched at %v, route added at %v (wait began %v)", m.at, at, start)
	}
	if m := w.waitEvent(ctx, want, events, time.Hour); m.err != nil || time.Since(m.at) > time.Second {
		t.Errorf("routes already in place: %+v", m)
	}
}
