package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/nodebridge/nodebridge/internal/lab"
	"github.com/nodebridge/nodebridge/internal/testenv"
)

// env is what a run made: a temp dir, the lab (etcd and kube-apiserver in
// their netns), one node netns running the agent, and the handles used to
// watch it. close undoes it in reverse.
type env struct {
	o      options
	dir    string
	lab    *lab.Lab
	node   *lab.Node
	cs     kubernetes.Interface
	routes *routeWatch
	pid    int // the agent's
	// flanneld runs on the node in the comparison's flannel turn.
	flanneld *lab.Process
	// beforeAgent is the API server's Node request count before the
	// agent started: its own loopback watch on Nodes is open by then.
	beforeAgent serverNodeRequests
}

// start brings up the lab and the agent's node and waits until the agent
// is ready with its own Node alone in the cluster.
func (e *env) start(ctx context.Context) error {
	var err error
	if e.dir, err = os.MkdirTemp("", "nodebridge-agentscale-"); err != nil {
		return fmt.Errorf("make temp dir: %w", err)
	}
	k8sBin := e.o.k8sBin
	if k8sBin == "" {
		logf("building or reusing kube-apiserver and etcd (scripts/build-k8s.sh)")
		if k8sBin, err = lab.Binaries(ctx); err != nil {
			return err
		}
	}
	logf("starting etcd and kube-apiserver in a lab netns")
	e.lab, err = lab.Start(ctx, lab.Options{Prefix: testenv.NetnsPrefix(), Dir: filepath.Join(e.dir, "lab"),
		K8sBin: k8sBin, AgentBin: e.o.agent})
	if err != nil {
		return err
	}
	if err := e.applyRBAC(ctx); err != nil {
		return err
	}
	if e.cs, err = e.lab.AdminClient(); err != nil {
		return err
	}
	return e.startNode(ctx)
}

// applyRBAC gives the agent the manifest's ServiceAccount and ClusterRole,
// so it runs with exactly the permissions a cluster gives it.
func (e *env) applyRBAC(ctx context.Context) error {
	return e.lab.ApplyManifestRBAC(ctx)
}

// startNode makes the agent's node with 198.18.0.11 also as a /15, creates
// its Node object and starts the agent, then waits for its /readyz.
func (e *env) startNode(ctx context.Context) error {
	var err error
	logf("starting the agent's node %s", nodeName(0))
	if e.node, err = e.lab.AddNode(ctx, nodeName(0), ownIndex); err != nil {
		return err
	}
	wide := netip.PrefixFrom(lab.NodeIPv4(ownIndex), underlayWide.Bits()).String()
	// Equivalent to: ip addr add 198.18.0.11/15 dev eth0, in the node netns.
	if _, err := e.node.Exec(ctx, "ip", "addr", "add", wide, "dev", "eth0"); err != nil {
		return fmt.Errorf("add %s to eth0 of %s: %w", wide, e.node.Netns, err)
	}
	if err := createNode(ctx, e.cs, 0); err != nil {
		return err
	}
	s, err := e.serverMetrics(ctx)
	if err != nil {
		return err
	}
	e.beforeAgent = nodeRequests(s)
	// The cluster CIDR as an operator passes it: the agent never guesses it.
	flags := []string{"--resync=" + e.o.resync.String(), "--cluster-cidr=" + clusterCIDR.String()}
	if err := e.node.StartAgent(flags...); err != nil {
		return err
	}
	if err := e.node.WaitReady(ctx, 60*time.Second); err != nil {
		return err
	}
	e.pid = e.node.Agent().Pid() // ip netns exec execs the agent in place: the pid is its own
	e.routes, err = openRoutes(e.node.Netns)
	return err
}

// agentMetrics fetches and parses the agent's /metrics.
func (e *env) agentMetrics(ctx context.Context) ([]sample, error) {
	code, body, err := e.node.Get(ctx, "/metrics")
	if err != nil {
		return nil, err
	}
	if code != 200 {
		return nil, fmt.Errorf("get /metrics of the agent: HTTP %d", code)
	}
	return parseMetrics(body), nil
}

// serverMetrics fetches and parses the API server's /metrics as the admin.
func (e *env) serverMetrics(ctx context.Context) ([]sample, error) {
	b, err := e.cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("get /metrics of kube-apiserver: %w", err)
	}
	return parseMetrics(string(b)), nil
}

// diagnose prints the tails of the agent's and the control plane's logs,
// for a run that failed.
func (e *env) diagnose() {
	if e.node != nil {
		fmt.Fprintf(os.Stderr, "--- agent log, last lines:\n%s\n", lastLines(e.node.AgentLogs(), 30))
	}
	if e.lab != nil {
		fmt.Fprint(os.Stderr, e.lab.ControlPlaneLogs())
	}
}

// close removes everything start made, past failures: the routes handle,
// the node (agent and netns), the lab (control plane and netns), the dir.
func (e *env) close() error {
	var err error
	if e.flanneld != nil {
		err = e.flanneld.Stop(10 * time.Second)
	}
	if e.routes != nil {
		e.routes.close()
	}
	if e.node != nil {
		err = errors.Join(err, e.node.Close())
	}
	if e.lab != nil {
		err = errors.Join(err, e.lab.Close())
	}
	if e.dir != "" {
		err = errors.Join(err, os.RemoveAll(e.dir))
	}
	return err
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// logf prints a progress line to stderr, so stdout carries the table only.
func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "agentscale: "+format+"\n", a...)
}
