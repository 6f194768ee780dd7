package bridge

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/nodebridge/nodebridge/internal/testenv"
	"github.com/nodebridge/nodebridge/pkg/rules"
)

// TestAddUndoesOnPanic: a panic in the rules backend, after the veth and
// the allocation exist, is returned as a *PanicError once Add has undone
// both, and the pod is left with nothing.
func TestAddUndoesOnPanic(t *testing.T) {
	tn := newTestNet(t, "")
	p := tn.pod(t, "rules-panic")
	tn.rules.SetPanic(rules.OpEnsure, "injected bug")
	err := tn.add(p)
	var pe *PanicError
	if !errors.As(err, &pe) || pe.Value != "injected bug" || !strings.Contains(err.Error(), "panic: injected bug") {
		t.Fatalf("Add error = %v, want a *PanicError of the injected value", err)
	}
	if !strings.Contains(string(pe.Stack), "rules.(*Fake)") {
		t.Errorf("panic stack does not show where it happened:\n%s", pe.Stack)
	}
	tn.assertNothingLeft(t)
	if out := testenv.Run(t, filepath.Base(p.Netns), "ip", "-o", "link", "show"); strings.Contains(out, "eth0") {
		t.Errorf("pod kept eth0 after a panicking ADD:\n%s", out)
	}
	tn.rules.SetPanic(rules.OpEnsure, nil)
	if err := tn.add(p); err != nil {
		t.Fatalf("ADD after the panicking one: %v", err)
	}
}

// TestNsDoPanic: a panic in the goroutine ns.Do runs its function on comes
// back as a *PanicError instead of ending the process.
func TestNsDoPanic(t *testing.T) {
	n, err := ns.GetNS(testenv.Path(testenv.NewNS(t, "panic")))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	err = nsDo(n, func() error { panic("in the pod netns") })
	var pe *PanicError
	if !errors.As(err, &pe) || pe.Value != "in the pod netns" {
		t.Fatalf("nsDo error = %v, want a *PanicError", err)
	}
}
