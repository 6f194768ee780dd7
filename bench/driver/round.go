package main

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// bench is what all rounds share.
type bench struct {
	ns  *nsSet
	tmp string // holds each round's dataDir
	net network
}

// roundSpec is one round: each plugin ADDs pods pods into a fresh node, then
// DELs them all, from workers threads.
type roundSpec struct {
	Name    string // "seq-100", "par-100", "busy-ipt-30"
	Pods    int
	Workers int
	Load    *busyLoad // nil: an idle node
}

// roundResult is what one plugin did in one round.
type roundResult struct {
	Plugin string
	Spec   roundSpec
	Add    phase
	Del    phase // empty for a plugin without DEL
	Rules  ruleCounts
	Veths  *vethsAfterDel // nil for a plugin without DEL
	Load   *loadRun       // nil in an idle round
}

// ruleCounts is the number of rules in the node at three points, counted
// where the plugin writes them.
type ruleCounts struct {
	Source   string `json:"counted_in"`
	Base     int    `json:"base"`
	AfterAdd int    `json:"after_add"`
	AfterDel int    `json:"after_del"`
}

// stage is one plugin's own part of a round: a node netns, pod netns and a
// dataDir, so the plugins never see each other's state.
type stage struct {
	p    plugin
	node string
	pods []string
	conf []byte
	res  roundResult
}

// lane returns the stage's calls of one verb.
func (st *stage) lane(cmd string) lane {
	return lane{p: st.p, node: st.node, n: len(st.pods), call: func(i int) call {
		c := call{Command: cmd, ContainerID: containerID(st.res.Spec.Name, st.p.Name, i), Netns: st.pods[i], IfName: "eth0", Conf: st.conf}
		if st.p.PodEnv != nil {
			c.Env = st.p.PodEnv(i)
		}
		return c
	}}
}

// runRound runs spec for every plugin, each on a stage of its own; all its
// netns are removed before it returns. Plugins without DEL sit DEL out.
func (b *bench) runRound(ctx context.Context, spec roundSpec, plugins []plugin) (_ []roundResult, err error) {
	var made []string // netns to remove
	defer func() { err = errors.Join(err, b.delNetns(made)) }()
	var all, dels []*stage
	for _, p := range plugins {
		st, err := b.newStage(spec, p, &made)
		if err != nil {
			return nil, err
		}
		all = append(all, st)
		if !p.NoDel {
			dels = append(dels, st)
		}
	}
	if err := runVerbs(ctx, spec, all, dels); err != nil {
		return nil, err
	}
	out := make([]roundResult, len(all))
	for i, st := range all {
		out[i] = st.res
	}
	return out, nil
}

// runVerbs runs the ADDs on all stages, then the DELs on dels, with the
// round's kube-proxy load churning in every node meanwhile when it has
// one; the churns have stopped when it returns.
func runVerbs(ctx context.Context, spec roundSpec, all, dels []*stage) error {
	stop := func() {}
	if spec.Load != nil {
		if err := spec.Load.install(ctx, all); err != nil {
			return fmt.Errorf("install kube-proxy load: %w", err)
		}
		stop = spec.Load.churn(ctx, all)
	}
	err := runVerb(ctx, spec, all, "ADD", func(st *stage, ph phase, rules int) { st.res.Add, st.res.Rules.AfterAdd = ph, rules })
	if err == nil {
		err = runVerb(ctx, spec, dels, "DEL", func(st *stage, ph phase, rules int) { st.res.Del, st.res.Rules.AfterDel = ph, rules })
	}
	stop()
	return err
}

// runVerb makes cmd's calls on every stage, then hands each stage its phase
// and the number of rules its node holds after it.
func runVerb(ctx context.Context, spec roundSpec, stages []*stage, cmd string, keep func(*stage, phase, int)) error {
	var watch *vethWatch
	if cmd == "DEL" {
		watch = watchVeths(stages)
	}
	phases, err := verbPhases(ctx, spec, stages, cmd)
	if watch != nil {
		if err != nil {
			watch.abandon()
			return err
		}
		watch.start()
		if err := watch.wait(); err != nil {
			return err
		}
	}
	if err != nil {
		return err
	}
	for i, st := range stages {
		rules, err := st.p.Rules.count(st.node)
		if err != nil {
			return err
		}
		keep(st, phases[i], rules)
	}
	return nil
}

// verbPhases interleaves the stages' calls in a sequential round, so load
// from elsewhere falls on every plugin alike; in a parallel round, where
// each plugin's throughput is the figure, the stages run one after another.
func verbPhases(ctx context.Context, spec roundSpec, stages []*stage, cmd string) ([]phase, error) {
	lanes := make([]lane, len(stages))
	for i, st := range stages {
		lanes[i] = st.lane(cmd)
	}
	if spec.Workers == 1 {
		return runInterleaved(ctx, lanes)
	}
	phases := make([]phase, len(lanes))
	for i, ln := range lanes {
		var err error
		if phases[i], err = runPhase(ctx, ln, spec.Workers); err != nil {
			return nil, err
		}
	}
	return phases, nil
}

// newStage makes p's node, pods and dataDir for spec, appending the netns
// to made as it goes, and counts the node's rules before any call.
func (b *bench) newStage(spec roundSpec, p plugin, made *[]string) (*stage, error) {
	st := &stage{p: p, res: roundResult{Plugin: p.Name, Spec: spec, Rules: ruleCounts{Source: p.Rules.String()}}}
	var err error
	if st.pods, err = b.newPods(spec.Pods, made); err != nil {
		return nil, err
	}
	if st.node, err = b.newNode(); err != nil {
		return nil, err
	}
	*made = append(*made, st.node)
	dataDir, err := os.MkdirTemp(b.tmp, "data-")
	if err != nil {
		return nil, fmt.Errorf("make dataDir: %w", err)
	}
	st.conf = p.Conf(dataDir)
	st.res.Rules.Base, err = p.Rules.count(st.node)
	return st, err
}

// newNode makes a node netns whose FORWARD policy is DROP in both families,
// so pod traffic passes only by the plugin's own rules.
func (b *bench) newNode() (string, error) {
	node, err := b.ns.add("node")
	if err != nil {
		return "", err
	}
	for _, tool := range []string{"iptables", "ip6tables"} {
		if _, err := runIn(node, tool, "-w", "-P", "FORWARD", "DROP"); err != nil {
			return "", errors.Join(err, b.ns.del(node))
		}
	}
	return node, nil
}

// newPods makes n pod netns, appending each to made as it goes.
func (b *bench) newPods(n int, made *[]string) ([]string, error) {
	pods := make([]string, n)
	for i := range pods {
		p, err := b.ns.add("pod")
		if err != nil {
			return nil, err
		}
		pods[i] = p
		*made = append(*made, p)
	}
	return pods, nil
}

func (b *bench) delNetns(paths []string) error {
	var errs []error
	for _, p := range paths {
		errs = append(errs, b.ns.del(p))
	}
	return errors.Join(errs...)
}
