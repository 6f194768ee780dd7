package spoofchk

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"sync"
)

// Op names a Checker method, to count its calls or make it fail in a Fake.
type Op string

// The Checker methods a Fake records.
const (
	OpEnsure Op = "ensure"
	OpDelete Op = "delete"
	OpCheck  Op = "check"
)

// Fake is an in-memory Checker for tests of its callers. It remembers the
// MAC let in through each port, counts calls per Op, and fails in an Op on
// demand. The zero value is ready to use and safe for concurrent use.
type Fake struct {
	mu    sync.Mutex
	ports map[string]net.HardwareAddr
	calls map[Op]int
	errs  map[Op]error
}

var _ Checker = (*Fake)(nil)

// SetErr makes every later call of op return err, leaving the recorded
// ports unchanged; a nil err makes op succeed again.
func (f *Fake) SetErr(op Op, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.errs == nil {
		f.errs = map[Op]error{}
	}
	f.errs[op] = err
}

// Calls returns how many times op has been called, failed calls included.
func (f *Fake) Calls(op Op) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// Allowed returns the MAC let in through port, nil when the port has no check.
func (f *Fake) Allowed(port string) net.HardwareAddr {
	f.mu.Lock()
	defer f.mu.Unlock()
	return bytes.Clone(f.ports[port])
}

// EnsurePort records p.MAC as the only MAC let in through p.IfName.
func (f *Fake) EnsurePort(ctx context.Context, p Port) error {
	return f.do(ctx, OpEnsure, func() error {
		if f.ports == nil {
			f.ports = map[string]net.HardwareAddr{}
		}
		f.ports[p.IfName] = bytes.Clone(p.MAC)
		return nil
	})
}

// DeletePort forgets port; an unknown port is not an error.
func (f *Fake) DeletePort(ctx context.Context, port string) error {
	return f.do(ctx, OpDelete, func() error {
		delete(f.ports, port)
		return nil
	})
}

// CheckPort fails with ErrMissing unless p.MAC is the MAC recorded for p.IfName.
func (f *Fake) CheckPort(ctx context.Context, p Port) error {
	return f.do(ctx, OpCheck, func() error {
		got, ok := f.ports[p.IfName]
		switch {
		case !ok:
			return fmt.Errorf("fake spoof check of port %s: not ensured: %w", p.IfName, ErrMissing)
		case !bytes.Equal(got, p.MAC):
			return fmt.Errorf("fake spoof check of port %s: MAC %s, want %s: %w", p.IfName, got, p.MAC, ErrMissing)
		}
		return nil
	})
}

// do counts the call, then returns the injected error, the context's error
// or the result of apply, in that order, all under the lock.
func (f *Fake) do(ctx context.Context, op Op, apply func() error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[Op]int{}
	}
	f.calls[op]++
	if err := f.errs[op]; err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fake spoof check %s: %w", op, err)
	}
	return apply()
}
