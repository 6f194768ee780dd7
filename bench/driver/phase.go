package main

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"
)

// lane is the calls one plugin makes in a phase, from threads in its node.
type lane struct {
	p    plugin
	node string           // netns path the plugin is exec'd in
	n    int              // number of calls
	call func(i int) call // the i-th call
}

// phase is what one lane's calls took.
type phase struct {
	Times    []time.Duration // per call, in call order; failed calls included
	Wall     time.Duration   // wall time of the calls (their sum when interleaved)
	Failures int
	FirstErr error // the first failure, to show what broke
}

func newPhase(n int) phase { return phase{Times: make([]time.Duration, n)} }

// record notes call i; a failed call is counted and the phase goes on.
func (ph *phase) record(i int, d time.Duration, err error) {
	ph.Times[i] = d
	if err != nil {
		ph.Failures++
		if ph.FirstErr == nil {
			ph.FirstErr = err
		}
	}
}

// runInterleaved makes call i of every lane in turn, for i in order, one
// call at a time and starting with a different lane each time, so a change
// in the machine's load falls on all plugins alike. Each lane execs from
// its own thread pinned in its node. A broken netns entry, or ctx ending,
// stops it with an error.
func runInterleaved(ctx context.Context, lanes []lane) ([]phase, error) {
	phases := make([]phase, len(lanes))
	turns := make([]chan int, len(lanes))
	done := make(chan error)
	var wg sync.WaitGroup
	for l, ln := range lanes {
		phases[l], turns[l] = newPhase(ln.n), make(chan int)
		wg.Go(func() {
			err := inNetns(ln.node, func() error {
				for i := range turns[l] {
					d, err := ln.p.run(ln.call(i))
					phases[l].record(i, d, err)
					phases[l].Wall += d
					done <- nil
				}
				return nil
			})
			for range turns[l] { // the netns entry failed: answer every turn with why
				done <- err
			}
		})
	}
	var err error
	order := newCallOrder(len(lanes))
	for i := 0; err == nil && i < maxCalls(lanes); i++ {
		for _, l := range order.next() {
			if err = ctx.Err(); err != nil {
				break
			}
			if i < lanes[l].n {
				turns[l] <- i
				if err = <-done; err != nil {
					break
				}
			}
		}
	}
	for _, t := range turns {
		close(t)
	}
	wg.Wait()
	return phases, err
}

// callOrder gives, for each call index, the order the lanes take it in: a
// shuffle, the same in every run, so that each plugin comes first, or
// right after any other, about equally often, and what a call leaves the
// kernel to finish (link events and the IPv6 work they start, RCU work)
// weighs on all alike. A fixed rotation had each lane follow the same one
// three calls in four: the lane after floor-add then paid about 0.3 ms of
// its link work.
type callOrder struct {
	rng   *rand.Rand
	lanes []int
}

func newCallOrder(n int) *callOrder {
	return &callOrder{rng: rand.New(rand.NewPCG(1, 2)), lanes: make([]int, n)}
}

func (o *callOrder) next() []int {
	for k := range o.lanes {
		o.lanes[k] = k
	}
	o.rng.Shuffle(len(o.lanes), func(a, b int) { o.lanes[a], o.lanes[b] = o.lanes[b], o.lanes[a] })
	return o.lanes
}

func maxCalls(lanes []lane) int {
	n := 0
	for _, l := range lanes {
		n = max(n, l.n)
	}
	return n
}

// runPhase makes the lane's calls from workers threads pinned in its node,
// as a runtime starting pods at once does. Wall runs from when all workers
// are in the netns (thread set-up and the netns check are not timed) to the
// last exit. ctx ending, or a broken netns entry, stops it with an error.
func runPhase(ctx context.Context, ln lane, workers int) (phase, error) {
	ph := newPhase(ln.n)
	jobs := make(chan int, ln.n)
	for i := range ln.n {
		jobs <- i
	}
	close(jobs)
	var mu sync.Mutex
	errs := make([]error, workers)
	var ready, wg sync.WaitGroup
	ready.Add(workers)
	begin := make(chan struct{})
	for w := range workers {
		wg.Go(func() {
			entered := false
			errs[w] = inNetns(ln.node, func() error {
				entered = true
				ready.Done()
				<-begin
				for i := range jobs {
					if err := ctx.Err(); err != nil {
						return err
					}
					d, err := ln.p.run(ln.call(i))
					mu.Lock()
					ph.record(i, d, err)
					mu.Unlock()
				}
				return nil
			})
			if !entered { // the netns entry failed: do not hold the others back
				ready.Done()
			}
		})
	}
	ready.Wait()
	start := time.Now()
	close(begin)
	wg.Wait()
	ph.Wall = time.Since(start)
	return ph, errors.Join(errs...)
}
