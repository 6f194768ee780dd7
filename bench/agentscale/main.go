// Command agentscale is the multi-node part of `make bench`: one
// nodebridge-agent against a real kube-apiserver and etcd (internal/lab)
// while 1,000 Node objects appear, then churn. It reports how long after
// the last change the agent's routes (proto 78) are exactly right, one
// full reconcile at 1,000 Nodes, the agent's RSS, and the API requests it
// made, each against the target; it prints a table and writes the
// figures as JSON. Unmet targets do not make it fail; a broken set-up does.
//
// With -flannel it then runs the agent and flanneld (kube subnet manager,
// host-gw) in turn, each on a fresh node of the same lab fed the same Node
// objects, and prints their figures side by side: single create and
// delete, a batch of creates, churn, repair of a route deleted by hand,
// peak RSS and CPU over the churn, each against "the agent at or ahead".
//
// It needs root. Everything runs in netns it creates (named "nb<pid>-...")
// and a temp dir, removed on the way out, Ctrl-C included; the root netns
// is never touched, and the report says whether it stayed so.
//
//	agentscale -agent bin/nodebridge-agent -flannel ~/.cache/nodebridge/flannel-v0.28.10/bin/flanneld -json _out/bench-agent.json
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// options are the command line.
type options struct {
	agent      string // nodebridge-agent binary, absolute
	k8sBin     string // dir with kube-apiserver and etcd; empty: scripts/build-k8s.sh
	jsonPath   string
	peers      int
	churn      int
	workers    int
	resync     time.Duration
	samples    int // resync reconciles to time
	poll       time.Duration
	singlePoll time.Duration // route poll interval while timing single changes
	timeout    time.Duration // per convergence
	flannel    string        // flanneld binary, absolute; empty: no side-by-side run
	singles    int           // single creates and deletes timed per contender
	blocks     int           // blocks the singles come in, the contenders taking turns
	repairs    int           // hand-deleted routes timed per contender
	offEvery   int           // every offEvery-th peer off-link in the main phases; 0: none
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err == nil {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		err = run(ctx, o)
		stop()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "agentscale:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("agentscale", flag.ContinueOnError)
	fs.StringVar(&o.agent, "agent", "bin/nodebridge-agent", "the nodebridge-agent binary")
	fs.StringVar(&o.k8sBin, "k8s-bin", "", "dir holding kube-apiserver and etcd (default: built or reused by scripts/build-k8s.sh)")
	fs.StringVar(&o.jsonPath, "json", "_out/bench-agent.json", "where to write the figures as JSON")
	fs.IntVar(&o.peers, "peers", 999, "peer Nodes created besides the agent's own")
	fs.IntVar(&o.churn, "churn", 100, "peer Nodes deleted, and new ones created, in the churn phase")
	fs.IntVar(&o.workers, "workers", 32, "parallel API clients creating and deleting Nodes")
	fs.DurationVar(&o.resync, "resync", 2*time.Second, "the agent's --resync")
	fs.IntVar(&o.samples, "reconciles", 5, "resync reconciles to time at full size")
	fs.DurationVar(&o.poll, "poll", 10*time.Millisecond, "route poll interval")
	fs.DurationVar(&o.singlePoll, "single-poll", time.Millisecond, "route poll interval while timing single Node changes in the comparison")
	fs.DurationVar(&o.timeout, "timeout", 60*time.Second, "longest wait for the routes to converge, from the first Node change")
	fs.StringVar(&o.flannel, "flannel", "", "flanneld binary to run beside the agent (scripts/build-flannel.sh builds one); empty skips the comparison")
	// 80 in 8 blocks: the two contenders' single changes differ by a few
	// percent of the API server's delivery; a p50 of 20 moved by about as
	// much from run to run, one of 80 by half that.
	fs.IntVar(&o.singles, "singles", 80, "single Node creates and deletes timed per contender in the comparison")
	fs.IntVar(&o.blocks, "single-blocks", 8, "blocks the single changes are timed in, the contenders taking turns block by block")
	fs.IntVar(&o.repairs, "repairs", 3, "routes deleted by hand and timed per contender in the comparison")
	fs.IntVar(&o.offEvery, "offlink-every", 2, "make every n-th peer off-link (100.64.0.0/16, behind the default gateway: reached through VXLAN) in the create, reconcile and churn phases; 0: none. The comparison with flanneld (host-gw) keeps every peer on-link")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	return o, o.check()
}

// check reports every bad option at once, and makes the agent path
// absolute, as the node netns's exec of it needs.
func (o *options) check() error {
	var errs []error
	if o.peers < 1 || o.churn < 0 || o.churn > o.peers || o.peers+o.churn > maxPeer {
		errs = append(errs, fmt.Errorf("-peers %d -churn %d: want 1 <= churn <= peers, peers+churn <= %d", o.peers, o.churn, maxPeer))
	}
	if o.workers < 1 || o.samples < 1 || o.singles < 1 || o.repairs < 1 || o.blocks < 1 || o.blocks > o.singles {
		errs = append(errs, fmt.Errorf("-workers %d -reconciles %d -singles %d -single-blocks %d -repairs %d: want at least 1, and no more blocks than singles",
			o.workers, o.samples, o.singles, o.blocks, o.repairs))
	}
	if o.offEvery < 0 {
		errs = append(errs, fmt.Errorf("-offlink-every %d: negative", o.offEvery))
	}
	if o.resync <= 0 || o.poll <= 0 || o.singlePoll <= 0 || o.timeout <= 0 {
		errs = append(errs, errors.New("-resync, -poll, -single-poll and -timeout must be positive"))
	}
	abs, err := filepath.Abs(o.agent)
	if err == nil {
		_, err = os.Stat(abs)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("-agent %s: %w", o.agent, err))
	}
	o.agent = abs
	if o.flannel != "" {
		abs, err := filepath.Abs(o.flannel)
		if err == nil {
			_, err = os.Stat(abs)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("-flannel %s: %w", o.flannel, err))
		}
		o.flannel = abs
	}
	return errors.Join(errs...)
}

// run sets up, measures, tears down, and reports; the report is printed
// and written only when every phase ran.
func run(ctx context.Context, o options) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("needs root: it creates network namespaces")
	}
	before := testenv.State(testenv.NetnsPrefix())
	r := &report{Time: time.Now(), Machine: newMachine(), Setup: setup{Nodes: o.peers + 1, Churn: o.churn,
		Workers: o.workers, Resync: o.resync.String(), ClusterCIDR: clusterCIDR.String(), Underlay: underlayWide.String(),
		OffLinkEvery: o.offEvery}}
	e := &env{o: o}
	err = e.start(ctx)
	if err == nil {
		offLinkEvery = o.offEvery
		err = e.measure(ctx, r)
		offLinkEvery = 0
	}
	if err == nil {
		r.Compare, err = e.compareOrSkip(ctx)
	}
	if err != nil && ctx.Err() == nil {
		e.diagnose()
	}
	logf("cleaning up")
	if cerr := e.close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("clean up: %w", cerr))
	}
	if err != nil {
		return err
	}
	r.RootChanges = testenv.Diff(before, testenv.State(testenv.NetnsPrefix()))
	r.Machine.LoadEnd = loadAvg()
	r.judge()
	r.print(os.Stdout)
	r.Compare.print(os.Stdout)
	return r.writeJSON(o.jsonPath)
}
