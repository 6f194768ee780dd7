package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// newTestNS gives the test an nsSet whose netns are all gone when it ends.
func newTestNS(t *testing.T) *nsSet {
	t.Helper()
	testenv.RequireRoot(t)
	s := newNSSet()
	t.Cleanup(func() {
		if err := s.delAll(); err != nil {
			t.Errorf("remove test netns: %v", err)
		}
	})
	return s
}

func mustAdd(t *testing.T, s *nsSet, kind string) string {
	t.Helper()
	p, err := s.add(kind)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A link made by a child of the pinned thread exists in that netns and
// nowhere else: the children really are born there.
func TestInNetnsChildrenRunThere(t *testing.T) {
	s := newTestNS(t)
	a, b := mustAdd(t, s, "a"), mustAdd(t, s, "b")
	if _, err := runIn(a, "ip", "link", "add", "nbbenchtest0", "type", "bridge"); err != nil {
		t.Fatal(err)
	}
	if _, err := runIn(a, "ip", "link", "show", "nbbenchtest0"); err != nil {
		t.Errorf("the link is not in the netns it was made in: %v", err)
	}
	if _, err := runIn(b, "ip", "link", "show", "nbbenchtest0"); err == nil {
		t.Error("the link shows in another netns")
	}
	if _, err := os.Stat("/sys/class/net/nbbenchtest0"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the link shows in the root netns: stat: %v", err)
	}
}

func TestCheckChildNetnsCatchesAMismatch(t *testing.T) {
	s := newTestNS(t)
	a, b := mustAdd(t, s, "a"), mustAdd(t, s, "b")
	err := inNetns(a, func() error { return checkChildNetns(b) })
	if err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("a child in %s checked against %s: got %v, want a mismatch error", a, b, err)
	}
	if err := inNetns(a, func() error { return checkChildNetns(a) }); err != nil {
		t.Errorf("a child in %s checked against itself: %v", a, err)
	}
}

// constLane is a lane of n calls of prog that all look alike.
func constLane(prog, node string, n int) lane {
	return lane{p: plugin{Name: prog, Path: prog}, node: node, n: n, call: func(int) call { return call{Command: "ADD"} }}
}

func TestRunPhase(t *testing.T) {
	s := newTestNS(t)
	node := mustAdd(t, s, "node")
	tests := []struct {
		prog         string
		workers      int
		wantFailures int
	}{
		{"/bin/true", 1, 0},
		{"/bin/true", 3, 0},
		{"/bin/false", 3, 7},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.prog, tt.workers), func(t *testing.T) {
			ph, err := runPhase(context.Background(), constLane(tt.prog, node, 7), tt.workers)
			if err != nil {
				t.Fatal(err)
			}
			if ph.Failures != tt.wantFailures || (ph.FirstErr != nil) != (tt.wantFailures > 0) {
				t.Errorf("Failures, FirstErr = %d, %v; want %d failures", ph.Failures, ph.FirstErr, tt.wantFailures)
			}
			for i, d := range ph.Times {
				if d <= 0 || d > ph.Wall {
					t.Errorf("Times[%d] = %v, want in (0, Wall %v]", i, d, ph.Wall)
				}
			}
		})
	}
}

func TestPhasesStop(t *testing.T) {
	s := newTestNS(t)
	node := mustAdd(t, s, "node")
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	gone := netnsDir + s.prefix + "never-made"
	tests := []struct {
		name string
		run  func() error
		want string
	}{
		{"runPhase, canceled", func() error { _, err := runPhase(canceled, constLane("/bin/true", node, 5), 2); return err }, "canceled"},
		{"runPhase, no netns", func() error {
			_, err := runPhase(context.Background(), constLane("/bin/true", gone, 5), 2)
			return err
		}, "open netns"},
		{"runInterleaved, canceled", func() error {
			_, err := runInterleaved(canceled, []lane{constLane("/bin/true", node, 3)})
			return err
		}, "canceled"},
		{"runInterleaved, no netns", func() error {
			_, err := runInterleaved(context.Background(), []lane{constLane("/bin/true", node, 3), constLane("/bin/true", gone, 3)})
			return err
		}, "open netns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.run(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// runInterleaved takes call i of each lane in turn, in callOrder's order.
func TestRunInterleavedOrder(t *testing.T) {
	s := newTestNS(t)
	a, b := mustAdd(t, s, "a"), mustAdd(t, s, "b")
	dir := t.TempDir()
	logPath, script := filepath.Join(dir, "log"), filepath.Join(dir, "plugin")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$CNI_CONTAINERID\" >>\"$LOG\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	mk := func(name, node string, n int) lane {
		p := plugin{Name: name, Path: script, Env: []string{"LOG=" + logPath}}
		return lane{p: p, node: node, n: n, call: func(i int) call { return call{Command: "ADD", ContainerID: fmt.Sprintf("%s%d", name, i)} }}
	}
	phases, err := runInterleaved(context.Background(), []lane{mk("a", a, 3), mk("b", b, 2)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	order := newCallOrder(2)
	for i := range 3 {
		for _, l := range order.next() {
			if name := "ab"[l : l+1]; i < map[string]int{"a": 3, "b": 2}[name] {
				fmt.Fprintf(&want, "%s%d\n", name, i)
			}
		}
	}
	if string(got) != want.String() {
		t.Errorf("calls ran in the order %q, want %q", got, want.String())
	}
	if len(phases[0].Times) != 3 || len(phases[1].Times) != 2 || phases[0].Failures+phases[1].Failures != 0 {
		t.Errorf("phases = %+v", phases)
	}
	if sum := phases[0].Times[0] + phases[0].Times[1] + phases[0].Times[2]; phases[0].Wall != sum {
		t.Errorf("interleaved Wall = %v, want the sum of the call times %v", phases[0].Wall, sum)
	}
}

// Over many calls each lane follows each other lane, and comes first,
// about equally often.
func TestCallOrderBalanced(t *testing.T) {
	const lanes, calls = 4, 3000
	o := newCallOrder(lanes)
	var follows [lanes][lanes]int
	prev := -1
	for range calls {
		for _, l := range o.next() {
			if prev >= 0 && prev != l {
				follows[l][prev]++
			}
			prev = l
		}
	}
	want := float64(calls*lanes) / float64(lanes*(lanes-1)) // transitions between distinct lanes, about
	for l := range lanes {
		for p := range lanes {
			if l == p {
				continue
			}
			if got := float64(follows[l][p]); got < 0.8*want || got > 1.2*want {
				t.Errorf("lane %d follows lane %d %v times, want about %.0f", l, p, got, want)
			}
		}
	}
}

func TestNSSetRemovesAll(t *testing.T) {
	s := newTestNS(t)
	paths := []string{mustAdd(t, s, "x"), mustAdd(t, s, "y")}
	if err := s.delAll(); err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there after delAll: %v", p, err)
		}
	}
	if err := s.del(paths[0]); err != nil {
		t.Errorf("del of a netns already gone: %v", err)
	}
}
