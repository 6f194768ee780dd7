package main

import (
	"context"
	"fmt"
	"os"
	"time"
)

// busyLoad is the kube-proxy load of a busy round: installed in every
// stage's node before the round, and churned in each while the plugins'
// ADDs and DELs run, so each plugin meets a node as busy as a Kubernetes
// node whose kube-proxy keeps resyncing.
type busyLoad struct {
	shape    loadShape
	services int
	resync   time.Duration
}

// busySpecs are the busy rounds of o: one per load shape, pods sequential
// calls, the plugins taking turns call by call as in the idle rounds.
func (o options) busySpecs() []roundSpec {
	var out []roundSpec
	for _, sh := range o.busy {
		out = append(out, roundSpec{Name: busyName(sh.Tag, o.busyN), Pods: o.busyN, Workers: 1,
			Load: &busyLoad{shape: sh, services: o.busyServices, resync: o.busyResync}})
	}
	return out
}

// busyName names a busy round by its load shape and pods: "busy-ipt-30".
func busyName(tag string, pods int) string { return fmt.Sprintf("busy-%s-%d", tag, pods) }

// install loads the kube-proxy rules into every stage's node, one node
// after another, then counts the node's rules again, load included, as
// the stage's base.
func (l *busyLoad) install(ctx context.Context, stages []*stage) error {
	for _, st := range stages {
		fmt.Fprintf(os.Stderr, "bench:   %s: loading %d Services of kube-proxy %s rules into %s's node\n",
			st.res.Spec.Name, l.services, l.shape.Name, st.p.Name)
		run, err := l.shape.install(ctx, st.node, l.services)
		if err != nil {
			return err
		}
		st.res.Load = &run
		fmt.Fprintf(os.Stderr, "bench:   %s: %s's node holds %d kube-proxy %s rules, loaded in %v ms\n",
			st.res.Spec.Name, st.p.Name, run.Rules, l.shape.Name, run.Install)
		if st.res.Rules.Base, err = st.p.Rules.count(st.node); err != nil {
			return err
		}
	}
	return nil
}

// churn starts a churn in every stage's node; the function it returns
// stops them all, waits for their last syncs, and notes what each did in
// its stage.
func (l *busyLoad) churn(ctx context.Context, stages []*stage) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	churns := make([]*churn, len(stages))
	for i, st := range stages {
		churns[i] = startChurn(ctx, l.shape, st.node, l.services, l.resync)
	}
	return func() {
		cancel()
		for i, c := range churns {
			c.wait(stages[i].res.Load)
			fmt.Fprintf(os.Stderr, "bench:   %s: %s's node: %d kube-proxy syncs during the round, %d failed\n",
				stages[i].res.Spec.Name, stages[i].p.Name, stages[i].res.Load.Syncs, stages[i].res.Load.SyncFailures)
		}
	}
}
