package main

import (
	"context"
	"sync"
	"time"
)

// deadline is a context that ends at a time, whose timer starts only when
// Done is first asked for. context.WithDeadline starts its timer at once,
// and the first timer of a process starts the Go runtime's poller (an
// epoll instance, an eventfd and a thread to wait on them), which an ADD
// that finds its rules in place and its lock free never needs: only a
// wait (a held lock, a backoff, an exec) asks for Done. Err tells a passed
// deadline without a timer.
type deadline struct {
	at time.Time

	mu      sync.Mutex
	started context.Context // once Done was asked for
	stop    context.CancelFunc
	err     error // cancelled before Done was asked for
}

var _ context.Context = (*deadline)(nil)

// withDeadline returns a context ending at at, and its cancel function.
func withDeadline(at time.Time) (context.Context, context.CancelFunc) {
	d := &deadline{at: at}
	return d, d.cancel
}

func (d *deadline) Deadline() (time.Time, bool) { return d.at, true }

func (d *deadline) Done() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.started == nil {
		switch d.err {
		case nil, context.DeadlineExceeded: // a passed deadline starts no timer
			d.started, d.stop = context.WithDeadline(context.Background(), d.at)
		default:
			d.started, d.stop = context.WithCancel(context.Background())
			d.stop()
		}
	}
	return d.started.Done()
}

func (d *deadline) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.started != nil:
		return d.started.Err()
	case d.err != nil:
		return d.err
	case !time.Now().Before(d.at):
		return context.DeadlineExceeded
	}
	return nil
}

func (d *deadline) Value(any) any { return nil }

// cancel ends the context, as a context.CancelFunc: with Canceled, unless
// the deadline has already passed.
func (d *deadline) cancel() {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.started != nil:
		d.stop()
	case d.err != nil:
	case !time.Now().Before(d.at):
		d.err = context.DeadlineExceeded
	default:
		d.err = context.Canceled
	}
}
