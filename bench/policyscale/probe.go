package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nodebridge/nodebridge/internal/lab"
)

// attempt is one probe connection: when it started and whether it opened.
type attempt struct {
	start time.Time
	open  bool
}

// enforced makes a change and measures how long after it the server's
// port behaves as want says (open or dropped) for new connections from
// the client. A new connection starts every o.every, each given
// o.timeout to open. Opening: the start of the first that opens. Dropping:
// the start of the first that fails after the last that opened, once
// o.timeout plus a settle time passed without another opening.
func (e *env) enforced(ctx context.Context, port int, open bool, change func(context.Context) error) (time.Duration, error) {
	const settle = 300 * time.Millisecond
	dial := lab.Dialer(e.client.Netns)
	addr := net.JoinHostPort(e.server.IPs[0].String(), strconv.Itoa(port))
	ctx, cancel := context.WithTimeout(ctx, e.o.limit)
	defer cancel()
	results := make(chan attempt, 1024)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // before wg.Wait: the attempts in flight end
	probe := func() {
		wg.Go(func() {
			s := time.Now()
			cctx, c := context.WithTimeout(ctx, e.o.timeout)
			conn, err := dial(cctx, "tcp4", addr)
			c()
			if err == nil {
				conn.Close()
			}
			if ctx.Err() == nil {
				results <- attempt{start: s, open: err == nil}
			}
		})
	}
	t0 := time.Now()
	if err := change(ctx); err != nil {
		return 0, err
	}
	tick := time.NewTicker(e.o.every)
	defer tick.Stop()
	probe()
	var lastOpen, firstDropAfter time.Time
	for {
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("port %d not %s within %v of the change", port, map[bool]string{true: "open", false: "dropped"}[open], e.o.limit)
		case <-tick.C:
			probe()
		case a := <-results:
			switch {
			case open && a.open:
				return a.start.Sub(t0), nil
			case a.open && a.start.After(lastOpen):
				lastOpen, firstDropAfter = a.start, time.Time{}
			case !a.open && a.start.After(lastOpen) && (firstDropAfter.IsZero() || a.start.Before(firstDropAfter)):
				firstDropAfter = a.start
			}
		}
		if !open && !firstDropAfter.IsZero() && time.Since(firstDropAfter) > e.o.timeout+settle && time.Since(lastOpen) > e.o.timeout+settle {
			return max(0, firstDropAfter.Sub(t0)), nil
		}
	}
}
