package agent

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// The network's IPAM dir goes once it holds no address, under its lock;
// with an address it stays, as does every other network's; a lock another
// process holds makes it wait, up to the context.
func TestRemoveIPAMState(t *testing.T) {
	data := t.TempDir()
	dir, other := filepath.Join(data, "nodebridge"), filepath.Join(data, "other")
	for _, f := range []string{"nodebridge/lock", "nodebridge/last_reserved_ip.0", "nodebridge/.nodebridge-index/x",
		"nodebridge/10.244.0.5", "nodebridge/fd00:10:244::5", "other/10.1.0.2"} {
		p := filepath.Join(data, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	for _, addr := range []string{"10.244.0.5", "fd00:10:244::5"} {
		if err := removeIPAMState(ctx, data, "nodebridge", discard()); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(dir); err != nil {
			t.Fatalf("%s went while it held an address: %v", dir, err)
		}
		if err := os.Remove(filepath.Join(dir, addr)); err != nil {
			t.Fatal(err)
		}
	}
	lock, err := os.Open(filepath.Join(dir, "lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := removeIPAMState(short, data, "nodebridge", discard()); err == nil {
		t.Errorf("removed under a lock held elsewhere")
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	if err := removeIPAMState(ctx, data, "nodebridge", discard()); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(data)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"other"}) {
		t.Errorf("data dir holds %v, want only the other network's", names)
	}
	if _, err := os.Stat(filepath.Join(other, "10.1.0.2")); err != nil {
		t.Errorf("other network's allocation: %v", err)
	}
	if err := removeIPAMState(ctx, data, "nodebridge", discard()); err != nil {
		t.Errorf("a second run: %v", err)
	}
}
