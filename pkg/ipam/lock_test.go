package ipam

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// openPair opens two Store values on one network directory, as two plugin
// processes would.
func openPair(t *testing.T) (*Store, *Store) {
	t.Helper()
	data := t.TempDir()
	var stores [2]*Store
	for i := range stores {
		s, err := Open(data, "net")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}
	return stores[0], stores[1]
}

func lockWithin(t *testing.T, s *Store, d time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return s.Lock(ctx)
}

func TestLockContention(t *testing.T) {
	s1, s2 := openPair(t)
	if err := lockWithin(t, s1, time.Second); err != nil {
		t.Fatalf("first Lock: %v", err)
	}
	start := time.Now()
	err := lockWithin(t, s2, 50*time.Millisecond)
	if !errors.Is(err, ErrLocked) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), s2.Dir()) {
		t.Fatalf("contended Lock: %v; want ErrLocked naming %s", err, s2.Dir())
	}
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Errorf("contended Lock gave up after %v, before its deadline", waited)
	}
	if err := s1.Unlock(); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	if err := lockWithin(t, s2, time.Second); err != nil {
		t.Fatalf("Lock after Unlock: %v", err)
	}
	if err := s2.Unlock(); err != nil {
		t.Fatal(err)
	}
}

func TestLockWaitsForRelease(t *testing.T) {
	s1, s2 := openPair(t)
	if err := lockWithin(t, s1, time.Second); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { got <- lockWithin(t, s2, 10*time.Second) }()
	select {
	case err := <-got:
		t.Fatalf("Lock returned %v while the other store held the lock", err)
	case <-time.After(100 * time.Millisecond):
	}
	if err := s1.Close(); err != nil { // closing drops the flock too
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("Lock after the holder closed: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Lock still waiting 2s after the holder closed")
	}
}

// TestLockIsReferenceLock checks we flock <dir>/lock, the file reference
// host-local v1.9.1 flocks, from an independent open file description as
// another process would have.
func TestLockIsReferenceLock(t *testing.T) {
	s, _ := openPair(t)
	f, err := os.Open(filepath.Join(s.Dir(), "lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	if err := lockWithin(t, s, 30*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Fatalf("Lock while <dir>/lock is flocked elsewhere: %v; want ErrLocked", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	if err := lockWithin(t, s, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Errorf("flock of <dir>/lock while the store holds it: %v; want EWOULDBLOCK", err)
	}
}
