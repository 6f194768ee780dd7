package main_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// promptly bounds how long an ADD may take once nothing holds the lock:
// far below the plugin's 55 s lock deadline, far above an ADD's real cost.
const promptly = 10 * time.Second

// TestFaultStaleLock kills a process holding the network's lock (a flock
// on <dataDir>/<network>/lock, as either plugin takes it) with SIGKILL,
// which leaves no chance to unlock. The lock dies with the process: an ADD
// that was waiting for it finishes promptly, the next ADD does not wait,
// and the lock file left on disk blocks nothing.
func TestFaultStaleLock(t *testing.T) {
	t.Parallel()
	f := newFixture(t, podSubnet)
	holder := holdLockInChild(t, f.netDir())
	waiting, next := f.newPod(), f.newPod()
	done := make(chan invoked, 1)
	go func() {
		o, err := invoke(f.node, f.callFor("ADD", waiting, f.conf("1.1.0")))
		done <- invoked{o, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("ADD finished while a live process held the lock: %v %s", r.err, r.o)
	case <-time.After(500 * time.Millisecond):
	}

	killed := time.Now()
	if err := holder.Process.Kill(); err != nil {
		t.Fatalf("SIGKILL the lock holder: %v", err)
	}
	holder.Wait() // killed: its exit status says so and nothing else
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatal(r.err)
		}
		mustResult(t, r.o, "1.1.0")
		t.Logf("waiting ADD finished %v after the holder was killed", time.Since(killed))
	case <-time.After(promptly):
		t.Fatalf("ADD still waiting %v after the lock holder was killed", promptly)
	}
	start := time.Now()
	f.add(next)
	if d := time.Since(start); d > promptly {
		t.Errorf("ADD after the holder died took %v", d)
	}
	if _, err := os.Stat(filepath.Join(f.netDir(), "lock")); err != nil {
		t.Errorf("lock file: %v; want it kept, as both plugins expect", err)
	}
	f.del(waiting)
	f.del(next)
	f.assertClean()
}

// holdLockInChild takes the flock on dir/lock and hands it to a sleeping
// child process, then drops the test's own descriptor: the child alone
// keeps the lock. It checks the lock is held and returns the child, which
// is killed at cleanup if the test did not.
func holdLockInChild(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "lock")
	lock, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("flock %s: %v", path, err)
	}
	child := exec.Command("sleep", "3600")
	child.ExtraFiles = []*os.File{lock} // fd 3 of the child: the same open file, so the same lock
	err = child.Start()
	lock.Close() // the child's descriptor alone holds the lock now
	if err != nil {
		t.Fatalf("start lock holder: %v", err)
	}
	t.Cleanup(func() {
		if child.ProcessState == nil {
			child.Process.Kill() // may have exited already: nothing to undo either way
			child.Wait()
		}
	})
	probe, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	if err := syscall.Flock(int(probe.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatalf("flock %s while the child holds it: %v, want EWOULDBLOCK", path, err)
	}
	return child
}
