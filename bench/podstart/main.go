// Command podstart is the pod-start part of `make bench`: how long a pod
// takes from its creation to Ready under kubelet, on a real three-node
// cluster on this machine (package internal/lab/kubelet: containerd and kubelet
// per node, pods placed by the scheduler), for nodebridge (conflist written
// by nodebridge-agent) and for the reference bridge + host-local v1.9.1
// with static routes between the nodes: two clusters of the same harness,
// both up before the first round, their rounds alternating so that the
// load of a shared machine weighs on both alike. Each round creates 30
// pods spread evenly over the nodes at once and times each from just
// before its create request to the moment a watch sees it Ready (local
// clock, as the API's timestamps have whole seconds only). It prints
// p50/p90 per network and their ratio, and writes the figures as JSON.
//
// It needs root. Everything runs in netns named "nbd10<pid>-..." and mount
// namespaces it makes, with files in one temp dir, all removed on the way
// out, Ctrl-C included; the report says whether the machine's own netns
// stayed as it was.
//
//	podstart -tools ~/.cache/nodebridge/bin -json _out/bench-podstart.json
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/nodebridge/nodebridge/internal/lab/kubelet"
	"github.com/nodebridge/nodebridge/internal/testenv"
)

// options are the command line.
type options struct {
	tools    string // the reference plugins v1.9.1
	jsonPath string
	networks []string // in the order they run
	nodes    int
	pods     int // per round
	rounds   int // per network, each on the same cluster
	timeout  time.Duration
}

// knownNetworks are the networks a run can measure.
var knownNetworks = map[string]bool{"nodebridge": true, "reference": true}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err == nil {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		err = run(ctx, o)
		stop()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "podstart:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	var o options
	tools := os.Getenv("NODEBRIDGE_TOOLS")
	if home, err := os.UserHomeDir(); tools == "" && err == nil {
		tools = filepath.Join(home, ".cache", "nodebridge", "bin")
	}
	var networks string
	fs := flag.NewFlagSet("podstart", flag.ContinueOnError)
	fs.StringVar(&o.tools, "tools", tools, "dir of the reference plugins bridge, host-local, portmap, loopback (v1.9.1)")
	fs.StringVar(&o.jsonPath, "json", "_out/bench-podstart.json", "where to write the figures as JSON")
	fs.StringVar(&networks, "networks", "nodebridge,reference", "the networks to measure, in order")
	fs.IntVar(&o.nodes, "nodes", 3, "nodes per cluster, 1..9")
	fs.IntVar(&o.pods, "pods", 30, "pods per round, spread evenly over the nodes")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds per network; all pods of a round are deleted before the next")
	fs.DurationVar(&o.timeout, "timeout", 3*time.Minute, "longest wait for a round's pods to be Ready, and to go")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.networks = strings.Split(networks, ",")
	return o, o.check()
}

// check reports every bad option at once.
func (o *options) check() error {
	var errs []error
	seen := map[string]bool{}
	for _, n := range o.networks {
		if !knownNetworks[n] || seen[n] {
			errs = append(errs, fmt.Errorf("-networks: %q: want nodebridge or reference, each once", n))
		}
		seen[n] = true
	}
	if o.nodes < 1 || o.nodes > 9 {
		errs = append(errs, fmt.Errorf("-nodes %d: want 1..9", o.nodes))
	}
	if o.pods < 1 || o.rounds < 1 {
		errs = append(errs, fmt.Errorf("-pods %d -rounds %d: want at least 1", o.pods, o.rounds))
	}
	if o.timeout <= 0 {
		errs = append(errs, fmt.Errorf("-timeout %v: want positive", o.timeout))
	}
	return errors.Join(errs...)
}

// run builds, measures each network on a cluster of its own, tears down,
// and reports; the report is printed and written only when all ran.
func run(ctx context.Context, o options) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("needs root: it creates network and mount namespaces")
	}
	before := testenv.State(netnsPrefix(), testenv.Kubelet)
	r := newReport(o)
	e, err := newEnv(o)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := e.close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("clean up: %w", cerr))
		}
		if err == nil {
			r.finish(testenv.Diff(before, testenv.State(netnsPrefix(), testenv.Kubelet)))
			r.print(os.Stdout)
			err = r.writeJSON(o.jsonPath)
		}
	}()
	logf("building nodebridge, the agent, the pause program and the image")
	if err := e.build(ctx); err != nil {
		return err
	}
	return measure(ctx, e, r)
}

// measure starts a cluster per network, all before the first round, then
// runs the rounds alternating between the networks, so that a change in
// the machine's load (it may be shared) hits both alike; then it takes the
// clusters down.
func measure(ctx context.Context, e *env, r *report) (err error) {
	clusters := make([]*kubelet.Cluster, len(e.o.networks))
	defer func() {
		for i, c := range clusters {
			if c != nil {
				logf("%s: taking the cluster down", e.o.networks[i])
				err = errors.Join(err, c.Close())
			}
		}
	}()
	r.Networks = make([]networkResult, len(e.o.networks))
	for i, n := range e.o.networks {
		if clusters[i], r.Networks[i], err = e.startCluster(ctx, n); err != nil {
			return err
		}
	}
	for round := 1; round <= e.o.rounds; round++ {
		for i, n := range e.o.networks {
			logf("%s: round %d: %d pods", n, round, e.o.pods)
			rr, err := runRound(ctx, clusters[i], roundSpec{round: round, pods: e.o.pods, timeout: e.o.timeout, ping: round == 1})
			if err != nil {
				return fmt.Errorf("%s round %d: %w", n, round, err)
			}
			r.Networks[i].Rounds = append(r.Networks[i].Rounds, rr)
		}
	}
	for i := range r.Networks {
		r.Networks[i].summarize()
	}
	return nil
}

// logf prints progress on stderr, time-stamped.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s podstart: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}
