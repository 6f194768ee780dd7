package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/nodebridge/nodebridge/internal/lab"
)

// contender is one route daemon of the side-by-side run: the agent or
// flanneld. start runs it in e.node and returns once it is ready.
type contender struct {
	name  string
	start func(ctx context.Context) (*lab.Process, error)
}

// contenderResult is what the side-by-side run measured of one contender,
// every figure taken the same way for both.
type contenderResult struct {
	Name            string      `json:"name"`
	CreateMs        []float64   `json:"create_ms"` // single create: API call to route present
	DeleteMs        []float64   `json:"delete_ms"` // single delete: API call to route gone
	Batch           convergence `json:"batch"`
	Churn           convergence `json:"churn"`
	ChurnCPUSeconds float64     `json:"churn_cpu_seconds"` // utime+stime over the churn
	RepairMs        []float64   `json:"repair_ms"`         // route deleted by hand to back
	PeakRSSKiB      int         `json:"peak_rss_kib"`      // VmHWM at the end
	Protocols       []string    `json:"route_protocols"`   // of the routes counted, after the batch
}

// contenders are the agent, as the main run starts it, and flanneld.
func (e *env) contenders() []contender {
	agent := func(ctx context.Context) (*lab.Process, error) {
		if err := e.node.StartAgent("--resync="+e.o.resync.String(), "--cluster-cidr="+clusterCIDR.String()); err != nil {
			return nil, err
		}
		return e.node.Agent(), e.node.WaitReady(ctx, 60*time.Second)
	}
	return []contender{{"nodebridge-agent", agent}, {"flanneld", e.startFlannel}}
}

// compareOrSkip runs the comparison when -flannel names a flanneld. A
// failure part-way is kept in the comparison, beside what finished, unless
// the run was interrupted.
func (e *env) compareOrSkip(ctx context.Context) (*comparison, error) {
	if e.o.flannel == "" {
		return &comparison{Skipped: "no -flannel binary given (make bench builds one with scripts/build-flannel.sh)"}, nil
	}
	res, err := e.compare(ctx)
	c := &comparison{Results: res}
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case err != nil:
		logf("side by side failed: %v", err)
		c.Error = err.Error()
	}
	if len(res) == 2 {
		c.Rows = compareRows(res[0], res[1])
	}
	return c, nil
}

// compare runs each contender in turn on a fresh node of the same lab,
// with the same Node objects made and removed the same way, and returns
// their figures. The main run's node and Nodes are removed first.
//
// The single changes come first, in -single-blocks blocks, the contenders
// taking turns block by block: most of each figure is the API server's
// watch delivery, which drifts over a run by more than the contenders
// differ, and one block each would hand that drift to whoever ran second.
func (e *env) compare(ctx context.Context) ([]contenderResult, error) {
	if err := e.resetCluster(ctx); err != nil {
		return nil, err
	}
	cs := e.contenders()
	out := make([]contenderResult, len(cs))
	for i, c := range cs {
		out[i].Name = c.name
	}
	for b := range e.o.blocks {
		n := e.o.singles/e.o.blocks + btoi(b < e.o.singles%e.o.blocks) // the blocks hold -singles in all
		for i, c := range cs {
			logf("side by side: %s, %d single creates and deletes (block %d of %d)", c.name, n, b+1, e.o.blocks)
			err := e.withContender(ctx, c, func(*lab.Process) error {
				creates, deletes, err := e.singles(ctx, n)
				out[i].CreateMs, out[i].DeleteMs = append(out[i].CreateMs, creates...), append(out[i].DeleteMs, deletes...)
				return err
			})
			if err != nil {
				return nil, err
			}
		}
	}
	for i, c := range cs {
		logf("side by side: %s", c.name)
		if err := e.withContender(ctx, c, func(p *lab.Process) error { return e.runContender(ctx, p, &out[i]) }); err != nil {
			return out[:i], err
		}
	}
	return out, nil
}

// withContender brings up a fresh node with its own Node object, starts c
// there, runs f, and removes the node and every Node object again.
func (e *env) withContender(ctx context.Context, c contender, f func(*lab.Process) error) error {
	p, err := e.freshNode(ctx, c)
	if err == nil {
		err = f(p)
	}
	if err != nil {
		err = fmt.Errorf("%w\n--- %s log, last lines:\n%s", err, c.name, lastLines(e.contenderLogs(), 30))
	}
	if err = errors.Join(err, e.resetCluster(ctx)); err != nil {
		return fmt.Errorf("%s: %w", c.name, err)
	}
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// contenderLogs is the log of whichever contender runs on the node now.
func (e *env) contenderLogs() string {
	switch {
	case e.flanneld != nil:
		return e.flanneld.Logs()
	case e.node != nil:
		return e.node.AgentLogs()
	}
	return "(nothing running)"
}

// resetCluster stops what runs on the node, removes the node, and deletes
// every Node object the runs may have made.
func (e *env) resetCluster(ctx context.Context) error {
	var err error
	if e.flanneld != nil {
		err = e.flanneld.Stop(10 * time.Second)
		e.flanneld = nil
	}
	if e.routes != nil {
		e.routes.close()
		e.routes = nil
	}
	if e.node != nil {
		err = errors.Join(err, e.node.Close())
		e.node = nil
	}
	all := span(0, e.o.peers+e.o.churn)
	_, derr := forEach(ctx, len(all), e.o.workers, func(ctx context.Context, j int) error {
		return lab.DeleteNode(ctx, e.cs, nodeName(all[j]))
	})
	return errors.Join(err, derr)
}

// runContender runs the measurements after the single changes in order,
// with p, the contender, running on a fresh node, into res.
func (e *env) runContender(ctx context.Context, p *lab.Process, res *contenderResult) error {
	var err error
	if res.Batch, err = e.createPeers(ctx); err != nil {
		return err
	}
	if res.Protocols, err = e.routes.protocols(); err != nil {
		return err
	}
	before, err := readCPU(p.Pid())
	if err != nil {
		return err
	}
	if res.Churn, err = e.churn(ctx); err != nil {
		return err
	}
	after, err := readCPU(p.Pid())
	if err != nil {
		return err
	}
	res.ChurnCPUSeconds = after - before
	if res.RepairMs, err = e.repairs(ctx); err != nil {
		return err
	}
	if done, perr := p.Exited(); done {
		return fmt.Errorf("%s exited (%v):\n%s", p.Name, perr, lastLines(p.Logs(), 30))
	}
	m, err := readMemory(p.Pid())
	res.PeakRSSKiB = m.VmHWMKiB
	return err
}

// freshNode makes the measured node as the main run does (its Node object
// included), starts c on it and opens a route watch counting routes of
// any protocol, so both contenders are counted the same way.
func (e *env) freshNode(ctx context.Context, c contender) (*lab.Process, error) {
	var err error
	if e.node, err = e.lab.AddNode(ctx, nodeName(0), ownIndex); err != nil {
		return nil, err
	}
	wide := netip.PrefixFrom(lab.NodeIPv4(ownIndex), underlayWide.Bits()).String()
	// Equivalent to: ip addr add 198.18.0.11/15 dev eth0, in the node netns.
	if _, err := e.node.Exec(ctx, "ip", "addr", "add", wide, "dev", "eth0"); err != nil {
		return nil, fmt.Errorf("add %s to eth0 of %s: %w", wide, e.node.Netns, err)
	}
	if err := createNode(ctx, e.cs, 0); err != nil {
		return nil, err
	}
	p, err := c.start(ctx)
	if err != nil {
		return nil, err
	}
	if e.routes, err = openRoutes(e.node.Netns); err != nil {
		return nil, err
	}
	e.routes.anyProto = true
	return p, nil
}

// singles creates one peer and times its route, then deletes it and times
// the route's removal, n times after one untimed warm-up round.
func (e *env) singles(ctx context.Context, n int) (creates, deletes []float64, err error) {
	for k := range n + 1 {
		i := 1 + k
		c, err := e.timeChange(ctx, wantRoutes([]int{i}), func(ctx context.Context) error {
			return createNode(ctx, e.cs, i)
		})
		if err != nil {
			return nil, nil, err
		}
		d, err := e.timeChange(ctx, routeSet{}, func(ctx context.Context) error {
			return lab.DeleteNode(ctx, e.cs, nodeName(i))
		})
		if err != nil {
			return nil, nil, err
		}
		if k > 0 {
			creates, deletes = append(creates, c), append(deletes, d)
		}
	}
	return creates, deletes, nil
}

// timeChange makes one change and returns the milliseconds from just
// before its API call to the route event after which the routes are
// exactly want. Events, not polls: a single change is routed in about
// 3 ms, which polling every millisecond would round by up to a third.
// -single-poll is how often the routes are listed as well, in case an
// event is lost.
func (e *env) timeChange(ctx context.Context, want routeSet, change func(context.Context) error) (float64, error) {
	events, stop, err := e.routes.subscribe()
	if err != nil {
		return 0, err
	}
	defer stop()
	start := time.Now()
	if err := change(ctx); err != nil {
		return 0, err
	}
	return e.timeUntil(ctx, start, want, events, e.o.singlePoll)
}

// timeUntil waits until the routes are exactly want (see waitEvent: on
// events, or polling every poll with none), and returns the milliseconds
// since start; not converging within -timeout is an error.
func (e *env) timeUntil(ctx context.Context, start time.Time, want routeSet, events <-chan netlink.RouteUpdate, poll time.Duration) (float64, error) {
	wctx, cancel := context.WithTimeout(ctx, e.o.timeout)
	defer cancel()
	m := e.routes.waitEvent(wctx, want, events, poll)
	if m.err != nil {
		return 0, m.err
	}
	return ms(m.at.Sub(start)), nil
}

// repairs deletes the route to peer 1's podCIDR by hand, o.repairs times,
// and times each until the routes are whole again.
func (e *env) repairs(ctx context.Context) ([]float64, error) {
	n := max(1, e.o.repairs)
	logf("%d repairs of a route deleted by hand", n)
	want := wantRoutes(append(span(1, e.o.peers-e.o.churn), span(e.o.peers+1, e.o.peers+e.o.churn)...))
	var out []float64
	for range n {
		// Equivalent to: ip route del 10.0.1.0/24, in the node netns.
		if _, err := e.node.Exec(ctx, "ip", "route", "del", podCIDR(1).String()); err != nil {
			return out, fmt.Errorf("delete route to %s in %s: %w", podCIDR(1), e.node.Netns, err)
		}
		d, err := e.timeUntil(ctx, time.Now(), want, nil, e.o.poll)
		if err != nil {
			return out, err
		}
		out = append(out, d)
	}
	return out, nil
}

// p50 is the median of samples, unsorted.
func p50(samples []float64) float64 {
	return median(slices.Sorted(slices.Values(samples)))
}
