package main

import (
	"fmt"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
)

// vethsAfterDel is what a plugin's DELs left to finish after they answered:
// nodebridge's DEL leaves the veth deletion, which waits for an RCU barrier
// in the kernel, to a reaper, so the pairs go a little after it answers.
type vethsAfterDel struct {
	Left   int `json:"left"`          // veths in the node when the last DEL had answered
	GoneMs ms  `json:"gone_after_ms"` // from then until the node held none
}

// vethsDeadline bounds the wait for the last pair.
const vethsDeadline = 10 * time.Second

// vethWatch counts each stage's veths from the instant the DELs end until
// none is left; its threads enter the nodes before, so the first count
// follows the last DEL at once.
type vethWatch struct {
	begin     chan struct{} // closed by start or abandon
	startAt   time.Time     // set before begin closes
	abandoned bool
	errs      []error
	wg        sync.WaitGroup
}

// watchVeths sets up a watch of stages' nodes: its threads enter them and
// wait for start (or abandon).
func watchVeths(stages []*stage) *vethWatch {
	w := &vethWatch{begin: make(chan struct{}), errs: make([]error, len(stages))}
	for i, st := range stages {
		w.wg.Go(func() {
			var v vethsAfterDel
			w.errs[i] = inNetns(st.node, func() error {
				<-w.begin
				if w.abandoned {
					return nil
				}
				var err error
				v, err = countUntilNone(st.node, w.startAt)
				return err
			})
			st.res.Veths = &v
		})
	}
	return w
}

// start begins the counting now; abandon ends the watch without it.
func (w *vethWatch) start() {
	w.startAt = time.Now()
	close(w.begin)
}

func (w *vethWatch) abandon() {
	w.abandoned = true
	close(w.begin)
	w.wg.Wait()
}

// wait returns once every node is empty or has failed.
func (w *vethWatch) wait() error {
	w.wg.Wait()
	for _, err := range w.errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// countUntilNone counts the calling thread's veths every 0.2 ms from start
// until there are none.
func countUntilNone(node string, start time.Time) (vethsAfterDel, error) {
	var v vethsAfterDel
	for first := true; ; first = false {
		n, err := countVeths()
		if err != nil {
			return v, err
		}
		if first {
			v.Left = n
		}
		if n == 0 {
			v.GoneMs = ms(time.Since(start))
			return v, nil
		}
		if time.Since(start) > vethsDeadline {
			return v, fmt.Errorf("%d veths still in node %s %v after the last DEL", n, node, vethsDeadline)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// countVeths counts the veths of the calling thread's netns.
func countVeths() (int, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return 0, fmt.Errorf("list links: %w", err)
	}
	n := 0
	for _, l := range links {
		if l.Type() == "veth" {
			n++
		}
	}
	return n, nil
}
