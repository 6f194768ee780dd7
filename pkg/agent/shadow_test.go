package agent

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestShadowing(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"00-notes.txt", "05-flannel.conflist", "07-old.conf", "10-aaa.json", "10-nodebridge.conflist", "99-late.conflist"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "01-dir.conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := shadowing(dir, "10-nodebridge.conflist")
	if want := []string{"05-flannel.conflist", "07-old.conf", "10-aaa.json"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("shadowing: %q %v, want %q", got, err, want)
	}
	if got, err := shadowing(filepath.Join(dir, "missing"), "10-nodebridge.conflist"); err != nil || got != nil {
		t.Errorf("missing dir: %q %v, want none", got, err)
	}
}

// A CNI config sorting before ours is reported at the first check and
// again when the list changes, not at every reconcile: a log line, the
// metric, and an Event on the own Node.
func TestCheckShadowing(t *testing.T) {
	cfg := Defaults()
	cfg.NodeName, cfg.CNIConfDir = "a", t.TempDir()
	var logs syncBuffer
	a := newAgent(cfg, slog.New(slog.NewTextHandler(&logs, nil)), nil, nil)
	cs := namingClientset()
	a.events = newEventRecorder(cs, "a", a.metrics, a.log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.events.run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	own := node("a", []string{"10.244.0.0/24"}, "198.18.0.11")
	own.UID = "uid-a"
	write := func(name string) {
		if err := os.WriteFile(filepath.Join(cfg.CNIConfDir, name), []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("10-flannel.conflist")
	for range 3 {
		a.checkShadowing([]*corev1.Node{own})
	}
	evs := waitEvents(t, cs, 1)
	if len(evs) != 1 || evs[0].Reason != eventShadowed || evs[0].InvolvedObject.UID != "uid-a" ||
		!strings.Contains(evs[0].Message, "10-flannel.conflist sorts before 10-nodebridge.conflist") {
		t.Errorf("Events after three checks: %+v", evs)
	}
	if got := metricsOf(t, a.metrics)["nodebridge_agent_conflists_shadowing"]; got != 1 {
		t.Errorf("conflists_shadowing %v, want 1", got)
	}
	write("05-kindnet.conflist")
	a.checkShadowing([]*corev1.Node{own})
	if evs := waitEvents(t, cs, 2); len(evs) != 2 {
		t.Errorf("no new Event when the list changed: %+v", evs)
	}
	for _, n := range []string{"05-kindnet.conflist", "10-flannel.conflist"} {
		if err := os.Remove(filepath.Join(cfg.CNIConfDir, n)); err != nil {
			t.Fatal(err)
		}
	}
	a.checkShadowing([]*corev1.Node{own})
	if got := metricsOf(t, a.metrics)["nodebridge_agent_conflists_shadowing"]; got != 0 {
		t.Errorf("conflists_shadowing %v once they are gone, want 0", got)
	}
	if n := strings.Count(logs.String(), "another CNI config sorts before ours"); n != 2 {
		t.Errorf("%d warnings for two changes, want 2:\n%s", n, logs.String())
	}
}
