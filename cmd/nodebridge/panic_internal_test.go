package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/nodebridge/nodebridge/pkg/bridge"
)

// TestRunRecoversPanic: a panic anywhere in a verb becomes the CNI error
// serve prints on stdout, code 999 with the panic's value, not a Go trace;
// the trace goes to stderr.
func TestRunRecoversPanic(t *testing.T) {
	stderr := captureStderr(t)
	in := &call{command: "STATUS", stdin: []byte(`{"cniVersion": "1.1.0", "name": "n", "type": "nodebridge"}`)}
	err := run(in, bridge.ModeStatus, func(context.Context, *bridge.Config, *bridge.Host, bridge.Pod) error {
		panic("injected bug")
	})
	var te *types.Error
	if !errors.As(err, &te) || te.Code != types.ErrInternal || te.Msg != "panic: injected bug" {
		t.Fatalf("run error = %#v, want CNI error 999 \"panic: injected bug\"", err)
	}
	if b, _ := os.ReadFile(stderr); !strings.Contains(string(b), "panic_internal_test.go") {
		t.Errorf("stderr does not show where it panicked:\n%s", b)
	}
}

// captureStderr sends os.Stderr to a file, whose path it returns, until
// the test ends. The test must not run in parallel.
func captureStderr(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stderr")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stderr
	os.Stderr = f
	t.Cleanup(func() {
		os.Stderr = saved
		f.Close()
	})
	return path
}

// TestErrorCodePanicError: a panic bridge recovered (and undid) is a 999
// too, its message kept.
func TestErrorCodePanicError(t *testing.T) {
	captureStderr(t)
	err := cniError(errors.Join(&bridge.PanicError{Value: "x"}, errors.New("cleanup")))
	var te *types.Error
	if !errors.As(err, &te) || te.Code != types.ErrInternal || te.Msg != "panic: x\ncleanup" {
		t.Fatalf("cniError = %#v, want code 999 with the panic's message", err)
	}
}
