package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A churn syncs until its context ends, going round the Services (so
// later syncs delete chains earlier ones made), then stops with its last
// sync's process reaped, leaving the node with as many rules as the load
// had. A tool that fails is counted, not fatal.
func TestChurnStops(t *testing.T) {
	tests := []struct {
		name      string
		shape     string
		argv      []string // replaces the shape's tool when set
		wantSyncs bool
	}{
		{"iptables", "iptables", nil, true},
		{"nftables", "nftables", nil, true},
		{"failing tool", "iptables", []string{"false"}, false},
	}
	s := newTestNS(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const services = 4
			node := mustAdd(t, s, "node")
			sh := mustShape(t, tt.shape)
			run, err := sh.install(context.Background(), node, services)
			if err != nil {
				t.Fatal(err)
			}
			if tt.argv != nil {
				sh.argv = tt.argv
			}
			ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
			defer cancel()
			c := startChurn(ctx, sh, node, services, 5*time.Millisecond)
			stopped := make(chan struct{})
			go func() { c.wait(&run); close(stopped) }()
			select {
			case <-stopped:
			case <-time.After(10 * time.Second):
				t.Fatal("the churn still runs 10 s after its context ended")
			}
			if kids := children(t); len(kids) > 0 {
				t.Errorf("processes left behind: %v", kids)
			}
			if tt.wantSyncs && (run.Syncs <= services || run.SyncFailures != 0 || run.SyncP50 <= 0) {
				t.Errorf("churn did %+v; want more than %d syncs, none failed", run, services)
			}
			if !tt.wantSyncs && (run.Syncs != 0 || run.SyncFailures == 0 || run.FirstError == "") {
				t.Errorf("churn with a failing tool did %+v; want failures and their first error", run)
			}
			if n, err := sh.count(node); err != nil || n != sh.rules(services) {
				t.Errorf("after the churn: %d rules, %v; want %d", n, err, sh.rules(services))
			}
		})
	}
}

// children lists the processes whose parent is this test binary.
func children(t *testing.T) []string {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	self := strconv.Itoa(os.Getpid())
	var out []string
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
		i := bytes.LastIndexByte(b, ')')
		if f := strings.Fields(string(b[i+1:])); i >= 0 && len(f) > 1 && f[1] == self {
			out = append(out, string(b[:i+1]))
		}
	}
	return out
}
