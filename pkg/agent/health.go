package agent

import (
	"fmt"
	"sync"
	"time"
)

// startupGrace is the least time the agent counts as live before its
// reconcile loop starts, while it waits for the Node list.
const startupGrace = 5 * time.Minute

// liveness is what /healthz answers: whether the reconcile loop still
// completes passes. A failed pass counts: the loop is alive, and /readyz
// says what fails.
type liveness struct {
	mu        sync.Mutex
	now       func() time.Time
	limit     time.Duration // longest time without a pass once the loop runs
	grace     time.Duration // longest time before the loop runs
	start     time.Time
	loopStart time.Time
	lastPass  time.Time
}

// newLiveness allows max(3 resync periods, 1 min) between passes, and
// max(that, startupGrace) until the loop starts.
func newLiveness(resync time.Duration, now func() time.Time) *liveness {
	limit := max(3*resync, time.Minute)
	return &liveness{now: now, limit: limit, grace: max(limit, startupGrace), start: now()}
}

// loopStarted records that the Node list is in and the loop runs.
func (l *liveness) loopStarted() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.loopStart = l.now()
}

// passed records the end of a reconcile, successful or not.
func (l *liveness) passed() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lastPass = l.now()
}

// check returns why the agent is not live, or nil.
func (l *liveness) check() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	switch {
	case !l.lastPass.IsZero():
		if d := now.Sub(l.lastPass); d > l.limit {
			return fmt.Errorf("no reconcile pass completed for %s (limit %s)", d.Round(time.Second), l.limit)
		}
	case !l.loopStart.IsZero():
		if d := now.Sub(l.loopStart); d > l.limit {
			return fmt.Errorf("reconcile loop started %s ago and completed no pass (limit %s)", d.Round(time.Second), l.limit)
		}
	default:
		if d := now.Sub(l.start); d > l.grace {
			return fmt.Errorf("Node list not in %s after start (limit %s)", d.Round(time.Second), l.grace)
		}
	}
	return nil
}
