package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nodebridge/nodebridge/internal/lab"
)

// convergence is how one batch of Node changes reached the kernel.
type convergence struct {
	Changes        int     `json:"changes"`         // Node creates and deletes sent
	ChangesSeconds float64 `json:"changes_seconds"` // from the first call to the return of the last
	Converged      bool    `json:"converged"`       // the routes matched exactly within the timeout
	AfterLastMs    float64 `json:"after_last_change_ms"`
	RoutesSeen     int     `json:"routes_seen"` // at the match, or at the last poll before the timeout
	RoutesWanted   int     `json:"routes_wanted"`
	TunnelWanted   int     `json:"vxlan_peers_wanted"` // off-link peers: an fdb entry and a neighbour each
}

// maxTime is the later of two times.
func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// converge sends jobs changes through f on the workers while polling the
// node's routes, and times how long after the last change returned they
// were exactly want. The -timeout counts from the first change. A timeout
// is a figure (not converged); a failed change or route read is an error.
func (e *env) converge(ctx context.Context, want routeSet, tun tunnelSet, jobs int, f func(context.Context, int) error) (convergence, error) {
	c := convergence{Changes: jobs, RoutesWanted: len(want), TunnelWanted: len(tun.fdb)}
	wctx, cancel := context.WithTimeout(ctx, e.o.timeout)
	defer cancel()
	done := make(chan match, 1)
	go func() {
		m := e.routes.waitEvent(wctx, want, nil, e.o.poll)
		if !m.at.IsZero() {
			// The routes are right; the forwarding and neighbour
			// entries of the tunneled peers must be too.
			at, err := e.routes.waitTunnel(wctx, tun, e.o.poll)
			m.at, m.err = maxTime(m.at, at), err
			if err != nil {
				m.at = time.Time{}
			}
		}
		done <- m
	}()
	first := time.Now()
	last, err := forEach(ctx, jobs, e.o.workers, f)
	if err != nil {
		cancel()
		<-done
		return c, fmt.Errorf("send %d Node changes: %w", jobs, err)
	}
	c.ChangesSeconds = last.Sub(first).Seconds()
	m := <-done
	c.RoutesSeen = m.seen
	switch {
	case !m.at.IsZero():
		c.Converged = true
		// A route can beat the API server's answer to the last create
		// home: that counts as no wait at all.
		c.AfterLastMs = max(0, ms(m.at.Sub(last)))
	case ctx.Err() != nil:
		return c, ctx.Err()
	case wctx.Err() == nil:
		return c, m.err // a route read failed
	default:
		c.AfterLastMs = ms(time.Since(last)) // how long it waited in vain
	}
	return c, nil
}

// createPeers creates Nodes 1..peers while the agent runs.
func (e *env) createPeers(ctx context.Context) (convergence, error) {
	peers := span(1, e.o.peers)
	logf("creating %d peer Nodes on %d workers", len(peers), e.o.workers)
	return e.converge(ctx, wantRoutes(peers), wantTunnel(peers), len(peers), func(ctx context.Context, j int) error {
		return createNode(ctx, e.cs, peers[j])
	})
}

// churn deletes the last churn peers and creates as many new ones,
// interleaved.
func (e *env) churn(ctx context.Context) (convergence, error) {
	gone := span(e.o.peers-e.o.churn+1, e.o.peers)
	added := span(e.o.peers+1, e.o.peers+e.o.churn)
	left := append(span(1, e.o.peers-e.o.churn), added...)
	logf("churn: deleting %d peer Nodes and creating %d", len(gone), len(added))
	return e.converge(ctx, wantRoutes(left), wantTunnel(left), 2*e.o.churn, func(ctx context.Context, j int) error {
		if j%2 == 0 {
			return lab.DeleteNode(ctx, e.cs, nodeName(gone[j/2]))
		}
		return createNode(ctx, e.cs, added[j/2])
	})
}

// reconciles are the steady-state full reconciles the agent's resync ran
// with every route in place.
type reconciles struct {
	SamplesMs    []float64 `json:"samples_ms"` // nodebridge_agent_reconcile_last_duration_seconds after each
	MedianMs     float64   `json:"median_ms"`
	MaxMs        float64   `json:"max_ms"`
	MeanMs       float64   `json:"mean_ms"`       // from the duration summary's sum and count over the samples
	RouteChanges float64   `json:"route_changes"` // made meanwhile: 0 when nothing needed fixing
}

// agentCounters are the agent's figures read on each poll.
type agentCounters struct {
	count, sum, last, installed, changes float64
}

// readCounters picks the reconcile and route figures from the agent's /metrics.
func readCounters(s []sample) agentCounters {
	const d = "nodebridge_agent_reconcile_duration_seconds"
	return agentCounters{
		count: sum(s, d+"_count", nil), sum: sum(s, d+"_sum", nil),
		last:      sum(s, "nodebridge_agent_reconcile_last_duration_seconds", nil),
		installed: sum(s, "nodebridge_agent_routes_installed", nil),
		changes:   sum(s, "nodebridge_agent_route_changes_total", nil),
	}
}

// measureReconciles waits for the resync ticker to run n reconciles with
// all routes installed, skipping the first one seen (it may be the tail of
// the burst that installed them), and records each one's duration.
func (e *env) measureReconciles(ctx context.Context, n, routes int) (reconciles, error) {
	var r reconciles
	ctx, cancel := context.WithTimeout(ctx, time.Duration(n+3)*2*e.o.resync+10*time.Second)
	defer cancel()
	logf("timing %d resync reconciles at %d routes (--resync=%s)", n, routes, e.o.resync)
	var start, cur agentCounters
	polled, skipped := false, false
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for len(r.SamplesMs) < n {
		if polled {
			select {
			case <-ctx.Done():
				return r, fmt.Errorf("wait for %d reconciles (got %d): %w", n, len(r.SamplesMs), ctx.Err())
			case <-tick.C:
			}
		}
		s, err := e.agentMetrics(ctx)
		if err != nil {
			return r, err
		}
		prev := cur
		cur = readCounters(s)
		switch {
		case !polled:
			polled = true
		case cur.count == prev.count:
		case !skipped:
			skipped, start = true, cur
		case cur.installed == float64(routes):
			r.SamplesMs = append(r.SamplesMs, 1000*cur.last)
		}
	}
	r.MeanMs = 1000 * (cur.sum - start.sum) / (cur.count - start.count)
	r.RouteChanges = cur.changes - start.changes
	sorted := slices.Sorted(slices.Values(r.SamplesMs))
	r.MedianMs, r.MaxMs = median(sorted), sorted[len(sorted)-1]
	return r, nil
}

// median of sorted values; 0 for none.
func median(sorted []float64) float64 {
	n := len(sorted)
	switch {
	case n == 0:
		return 0
	case n%2 == 1:
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
