package main

import (
	"os/exec"
	"testing"
	"time"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// TestWatchVeths: a pair deleted 30 ms after the watch starts is counted as
// left, and as gone no sooner than its deletion; an empty node is gone at once.
func TestWatchVeths(t *testing.T) {
	busy, empty := testenv.NewNode(t), testenv.NewNode(t)
	testenv.Run(t, busy, "ip", "link", "add", "w0", "type", "veth", "peer", "name", "w1")
	stages := []*stage{{node: testenv.Path(busy)}, {node: testenv.Path(empty)}}
	w := watchVeths(stages)
	deleted := make(chan time.Duration, 1)
	w.start()
	go func() {
		time.Sleep(30 * time.Millisecond)
		out, err := exec.Command("ip", "-n", busy, "link", "del", "w0").CombinedOutput()
		if err != nil {
			t.Errorf("ip link del w0: %v\n%s", err, out) // Errorf is safe off the test goroutine
		}
		deleted <- time.Since(w.startAt)
	}()
	if err := w.wait(); err != nil {
		t.Fatal(err)
	}
	at := <-deleted
	if v := stages[0].res.Veths; v.Left != 2 || time.Duration(v.GoneMs) < 30*time.Millisecond || time.Duration(v.GoneMs) > at+time.Second {
		t.Errorf("busy node: %+v, want 2 veths left and gone between 30 ms and %v", *v, at)
	}
	if v := stages[1].res.Veths; v.Left != 0 || time.Duration(v.GoneMs) > time.Second {
		t.Errorf("empty node: %+v, want none left, gone at once", *v)
	}
}
