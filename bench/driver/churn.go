package main

import (
	"context"
	"time"
)

// syncTimeout bounds one partial sync: a sync in flight when the churn's
// context ends is left to finish, not killed half-way, but never for longer.
const syncTimeout = 30 * time.Second

// churn is kube-proxy's partial syncs in one node: every period it moves
// the next Service, round-robin, to new endpoints in one transaction.
type churn struct {
	shape    loadShape
	node     string
	services int
	period   time.Duration
	gens     []int // each Service's generation, raised by each sync that succeeded
	times    []time.Duration
	failures int
	firstErr error
	done     chan struct{}
}

// startChurn starts a churn of shape's load of services Services in the
// netns at node, from a thread of its own there, until ctx ends; wait
// returns what it did.
func startChurn(ctx context.Context, shape loadShape, node string, services int, period time.Duration) *churn {
	c := &churn{shape: shape, node: node, services: services, period: period, gens: make([]int, services), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		if err := inNetns(node, func() error { c.loop(ctx); return nil }); err != nil {
			c.fail(err)
		}
	}()
	return c
}

// loop syncs on every tick until ctx ends. Ticks missed while a sync runs
// are dropped, as kube-proxy coalesces changes that come in during a sync.
func (c *churn) loop(ctx context.Context) {
	t := time.NewTicker(c.period)
	defer t.Stop()
	for k := 0; ; k = (k + 1) % c.services {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s := kpService{index: k, gen: c.gens[k] + 1}
		syncCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), syncTimeout)
		start := time.Now()
		err := c.shape.apply(syncCtx, c.node, c.shape.sync(s))
		d := time.Since(start)
		cancel()
		if err != nil {
			c.fail(err)
			continue
		}
		c.gens[k]++
		c.times = append(c.times, d)
	}
}

func (c *churn) fail(err error) {
	c.failures++
	if c.firstErr == nil {
		c.firstErr = err
	}
}

// wait waits until the churn has stopped, its last sync's process reaped,
// and adds what it did to r.
func (c *churn) wait(r *loadRun) {
	<-c.done
	sum := summarize(c.times)
	r.Resync, r.Syncs, r.SyncP50, r.SyncMax, r.SyncFailures = ms(c.period), len(c.times), sum.P50, sum.Max, c.failures
	if c.firstErr != nil {
		r.FirstError = c.firstErr.Error()
	}
}
