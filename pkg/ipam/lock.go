package ipam

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
	"time"
)

// Poll intervals while another process holds the lock: start short, because
// a reference or nodebridge ADD holds it for about a millisecond, and back
// off so a long wait costs few wake-ups.
const (
	lockPollFirst = 2 * time.Millisecond
	lockPollMax   = 20 * time.Millisecond
)

// Lock takes the network's flock, waiting until ctx ends (then ErrLocked).
//
// It is the flock reference host-local v1.9.1 takes, on <dir>/lock, so
// nodebridge and reference processes on one node exclude each other.
// Equivalent to: flock <dir>/lock
func (s *Store) Lock(ctx context.Context) error {
	err := s.flock(syscall.LOCK_EX | syscall.LOCK_NB)
	if !errors.Is(err, syscall.EWOULDBLOCK) {
		return s.lockErr(err)
	}
	interval := lockPollFirst
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("lock %s: %w: %w", s.lockPath(), ErrLocked, context.Cause(ctx))
		case <-tick.C:
		}
		err = s.flock(syscall.LOCK_EX | syscall.LOCK_NB)
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return s.lockErr(err)
		}
		if interval < lockPollMax {
			interval = min(2*interval, lockPollMax)
			tick.Reset(interval)
		}
	}
}

// Unlock releases the flock.
func (s *Store) Unlock() error {
	if err := s.flock(syscall.LOCK_UN); err != nil {
		return fmt.Errorf("unlock %s: %w", s.lockPath(), err)
	}
	return nil
}

func (s *Store) lockErr(err error) error {
	if err != nil {
		return fmt.Errorf("lock %s: %w", s.lockPath(), err)
	}
	return nil
}

func (s *Store) lockPath() string { return filepath.Join(s.dir, lockName) }

// flock applies how to the lock file, retrying when a signal interrupts it.
func (s *Store) flock(how int) error {
	for {
		if err := syscall.Flock(s.lock, how); err != syscall.EINTR {
			return err
		}
	}
}
