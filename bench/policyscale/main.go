// Command policyscale is the NetworkPolicy part of `make bench`: one
// nodebridge-agent against a real kube-apiserver and etcd (internal/lab),
// its node holding 1,000 pods (two of them real netns attached by the
// plugin, the rest Pod objects with addresses) in 20 namespaces, under
// 200 NetworkPolicies of the shapes clusters use. It then changes a Pod's
// labels, a Namespace's labels and a policy, each way, and measures with
// real TCP connections between the two real pods how long after the
// change the kernel enforces it; and it reports the policy table's kernel
// objects and the agent's memory, against the targets. Unmet
// targets do not make it fail; a broken set-up does.
//
// It needs root. Everything runs in netns it creates (named "nb<pid>-...")
// and a temp dir, removed on the way out; the root netns is never touched,
// and the report says whether it stayed so.
//
//	policyscale -json _out/bench-policy.json
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// options are the command line.
type options struct {
	jsonPath   string
	namespaces int
	perNS      int
	rounds     int
	every      time.Duration // between probe connections
	timeout    time.Duration // of one probe connection
	limit      time.Duration // longest wait for a change to be enforced
	connects   int           // connections timed per table size
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err == nil {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		err = run(ctx, o)
		stop()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "policyscale:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("policyscale", flag.ContinueOnError)
	fs.StringVar(&o.jsonPath, "json", "_out/bench-policy.json", "where to write the figures as JSON")
	fs.IntVar(&o.namespaces, "namespaces", 20, "namespaces, each with the same 10 policies")
	fs.IntVar(&o.perNS, "pods-per-namespace", 50, "pods per namespace, all on the agent's node")
	fs.IntVar(&o.rounds, "rounds", 5, "times each change is made and undone")
	fs.DurationVar(&o.every, "probe-every", 5*time.Millisecond, "interval between probe connections")
	fs.DurationVar(&o.timeout, "probe-timeout", 150*time.Millisecond, "a probe connection not open by then counts as dropped")
	fs.IntVar(&o.connects, "connects", 2000, "new connections timed with the full table and with the small one")
	fs.DurationVar(&o.limit, "limit", 10*time.Second, "longest wait for one change to be enforced")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.namespaces < 3 || o.perNS < 5 || o.namespaces*o.perNS > maxPods || o.rounds < 1 || o.connects < 1 {
		return o, fmt.Errorf("-namespaces %d -pods-per-namespace %d -rounds %d: -connects %d: want at least 3, 5, 1 and 1, and at most %d pods",
			o.namespaces, o.perNS, o.rounds, o.connects, maxPods)
	}
	if o.every <= 0 || o.timeout <= 0 || o.limit <= o.timeout {
		return o, errors.New("-probe-every and -probe-timeout must be positive, -limit above -probe-timeout")
	}
	return o, nil
}

// run sets up, measures, tears down, and reports; the report is printed
// and written only when every phase ran.
func run(ctx context.Context, o options) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("needs root: it creates network namespaces")
	}
	before := testenv.State(testenv.NetnsPrefix())
	r := &report{Time: time.Now(), Pods: o.namespaces * o.perNS, Namespaces: o.namespaces, Policies: o.namespaces * policiesPerNS}
	e := &env{o: o}
	err = e.start(ctx)
	if err == nil {
		err = e.measure(ctx, r)
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
	r.judge()
	r.print(os.Stdout)
	return r.writeJSON(o.jsonPath)
}

// logf prints a progress line to stderr, so stdout carries the table only.
func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "policyscale: "+format+"\n", a...)
}
