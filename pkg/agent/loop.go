package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Pacing keeps reconciles to a fifth of a core over time (a burst of
// events, a thousand Nodes created or a link flap dropping every route,
// costs one reconcile per wait), while a change that comes alone is
// routed at once: reconciles earn credit at a fifth of the time that
// passes, up to maxCredit, and run at once while the credit is not spent.
const (
	paceShare = 5                     // wall time per reconcile time, in a burst
	maxCredit = 20 * time.Millisecond // reconcile time a quiet agent may spend at once
	maxWait   = 200 * time.Millisecond
)

// pacer decides when a poke reconciles: at once while there is credit;
// otherwise once, when the debt is paid, for all the pokes until then.
type pacer struct {
	credit time.Duration // negative: owed
	at     time.Time     // when credit was last brought up to date; zero: full
	timer  <-chan time.Time
}

// earn brings the credit up to now.
func (p *pacer) earn(now time.Time) {
	if p.at.IsZero() {
		p.credit = maxCredit
	} else {
		p.credit = min(p.credit+now.Sub(p.at)/paceShare, maxCredit)
	}
	p.at = now
}

// ran records a reconcile that ended at end and took took. The debt never
// exceeds the last reconcile's time, so the wait after it is at most five
// times that, however many ran back to back (a resync's among them).
func (p *pacer) ran(end time.Time, took time.Duration) {
	p.earn(end)
	p.credit = max(p.credit-took, -took)
}

// poke reports whether to reconcile now; otherwise it arms the timer,
// once, for when the debt is paid.
func (p *pacer) poke(now time.Time) bool {
	if p.timer != nil {
		return false
	}
	if p.earn(now); p.credit >= 0 {
		return true
	}
	p.timer = time.After(min(-p.credit*paceShare, maxWait))
	return false
}

// backoff doubles a retry delay from min up to max.
type backoff struct {
	min, max, cur time.Duration
}

// next returns the delay before the next retry.
func (b *backoff) next() time.Duration {
	b.cur = min(max(2*b.cur, b.min), b.max)
	return b.cur
}

func (b *backoff) reset() { b.cur = 0 }

// loop reconciles on start, on pokes (paced), on every resync and on
// retries after a failure, until ctx ends.
func (a *agent) loop(ctx context.Context) {
	resync := time.NewTicker(a.cfg.Resync)
	defer resync.Stop()
	retry := backoff{min: 200 * time.Millisecond, max: 30 * time.Second}
	var retryC <-chan time.Time
	var pace pacer
	logged := "" // the failure last logged: a lasting one is logged once
	a.host.open(a.log)
	defer a.host.close()
	run := func(verify bool) {
		start := time.Now()
		err := a.reconcile(ctx, verify)
		end := time.Now()
		pace.ran(end, end.Sub(start))
		if len(a.kick) == 0 && pace.timer == nil {
			// About to idle: read what this reconcile changed now, off
			// the next lone Node change's path. In a burst the next
			// reconcile reads it anyway, and pacing is not charged.
			a.host.refresh()
		}
		a.live.passed()
		switch {
		case err == nil:
			retry.reset()
			retryC, logged = nil, ""
		case retryC == nil: // first failure, or the retry itself failed
			d := retry.next()
			if err.Error() != logged {
				a.log.Log(ctx, logLevelOf(err), "reconcile", "err", err, "retry_in", d)
				logged = err.Error()
			}
			retryC = time.After(d)
		}
	}
	a.live.loopStarted()
	run(true)
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.kick:
			if pace.poke(time.Now()) {
				run(false)
			}
		case <-pace.timer:
			pace.timer = nil
			run(false)
		case <-resync.C:
			run(true)
		case <-retryC:
			retryC = nil
			run(false)
		}
	}
}

// reconcile reads the Nodes from the cache and converges the host; verify
// re-reads the rules from the kernel even when the cache says they are in
// place. On success it marks the node ready and sets the Node condition.
func (a *agent) reconcile(ctx context.Context, verify bool) error {
	start := time.Now()
	d, err := a.converge(ctx, verify)
	took := time.Since(start)
	a.metrics.update(func(m *Metrics) {
		m.reconciles++
		m.reconcileSum += took
		m.reconcileLast = took
		if err != nil {
			if m.reconcileErrors == nil {
				m.reconcileErrors = map[string]int{}
			}
			for _, s := range failedSteps(err) {
				m.reconcileErrors[s]++
			}
			return
		}
		m.lastSync = time.Now()
	})
	if err != nil {
		a.setReady(false, err.Error())
		if errors.Is(err, errUnreachable) && d != nil {
			// Lasting, and the operator's to fix: the Node says so.
			err = errors.Join(err, a.setCondition(ctx, d.ownNode, condition{status: corev1.ConditionTrue,
				reason: unreachableReason, message: "nodebridge-agent: " + unreachable(d.d.unreachable()).Error()}))
		}
		return err
	}
	a.setReady(true, "")
	return a.setCondition(ctx, d.ownNode, conditionUp)
}

// setCondition sets the own Node's NetworkUnavailable condition to want.
func (a *agent) setCondition(ctx context.Context, own *corev1.Node, want condition) error {
	if a.status == nil {
		return nil
	}
	if patched, err := a.status.ensure(ctx, own, want); err != nil {
		a.metrics.update(func(m *Metrics) { m.apiErrors++ })
		return err
	} else if patched {
		a.log.Info("node condition set", "type", "NetworkUnavailable", "status", want.status, "reason", want.reason)
	}
	return nil
}

// setReady records readiness for /readyz and logs when it changes.
func (a *agent) setReady(ok bool, reason string) {
	a.metrics.update(func(m *Metrics) { m.ready = ok })
	if a.ready.set(ok, reason) {
		a.log.Info("readiness", "ready", ok, "reason", reason)
	}
}

// converge computes the desired state and applies it: rules, conflist and
// routes are each attempted even when another fails.
func (a *agent) converge(ctx context.Context, verify bool) (*applied, error) {
	nodes, err := a.nodes()
	if err != nil {
		return nil, failedIn(stepNodes, fmt.Errorf("list Nodes from the cache: %w", err))
	}
	// Whatever fails below: it needs neither cluster CIDRs nor podCIDR. Last,
	// so that a Node change's route does not wait on a directory listing.
	defer a.checkShadowing(nodes)
	cidrs, err := a.clusterCIDRs(ctx)
	if err != nil {
		return nil, failedIn(stepClusterCIDR, err)
	}
	st, err := a.plan(cidrs, nodes, verify)
	if err != nil {
		return nil, failedIn(stepPlan, err)
	}
	a.links.Store([2]int{linkIndex(st.underlays[v4]), linkIndex(st.underlays[v6])})
	// Routes first: a Node change waits on them, and neither the rules
	// nor the conflist depend on them.
	tunnelErr := a.applyTunnels(st, verify)
	routesErr := a.applyRoutes(st)
	rulesErr := a.applyRules(ctx, st, verify)
	confErr := a.applyConflist(ctx, st, verify)
	return st, errors.Join(failedIn(stepUnderlay, st.underlayErr), failedIn(stepRules, rulesErr),
		failedIn(stepConflist, confErr), failedIn(stepTunnels, tunnelErr), failedIn(stepRoutes, routesErr),
		failedIn(stepUnreachable, unreachable(st.d.unreachable())))
}

// errUnreachable: with --backend=host-gw, peers whose InternalIP is not
// on-link get no route; the node is not ready and its Node says so.
var errUnreachable = errors.New("peers not on-link")

// unreachable is errUnreachable naming the first few such podCIDRs; nil
// when there are none.
func unreachable(skips []skip) error {
	if len(skips) == 0 {
		return nil
	}
	var parts []string
	for i, s := range skips {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more", len(skips)-i))
			break
		}
		parts = append(parts, s.node+" "+s.podCIDR+" ("+s.detail+")")
	}
	return fmt.Errorf("%w: %s: --backend=host-gw reaches on-link peers only; --backend=auto tunnels to the others",
		errUnreachable, strings.Join(parts, ", "))
}

// clusterCIDRs returns the cluster CIDRs once known, and logs when they
// become known.
func (a *agent) clusterCIDRs(ctx context.Context) ([]netip.Prefix, error) {
	knew := len(a.cidrs.known) > 0
	cidrs, err := a.cidrs.get(ctx)
	a.metrics.update(func(m *Metrics) { m.clusterCIDRKnown = err == nil })
	if err == nil && !knew {
		a.log.Info("cluster CIDRs known", "clusterCIDRs", cidrs, "from", a.cidrs.source())
	}
	return cidrs, err
}

// logLevelOf is the level of a reconcile failure: waiting for the API is
// expected at start-up; an unknown cluster CIDR or a rejected own podCIDR
// needs an operator; anything else is worth a warning.
func logLevelOf(err error) slog.Level {
	if errors.Is(err, errNoPodCIDR) || errors.Is(err, errNoOwnNode) {
		return slog.LevelInfo
	}
	if errors.Is(err, errClusterCIDRUnknown) || errors.Is(err, errOwnPodCIDR) {
		return slog.LevelError
	}
	return slog.LevelWarn
}
