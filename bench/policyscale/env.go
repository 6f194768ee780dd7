package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/nodebridge/nodebridge/internal/lab"
	"github.com/nodebridge/nodebridge/internal/testenv"
)

// The agent's node: its podCIDR holds the 1,000 pods' addresses.
var (
	nodeName    = "node-1"
	podCIDR     = netip.MustParsePrefix("10.244.0.0/22")
	clusterCIDR = "10.244.0.0/16"
	maxPods     = 1000
)

// env is what a run made: a temp dir, the lab, the agent's node, the two
// real pods and the server's listeners. close undoes it in reverse.
type env struct {
	o              options
	dir            string
	lab            *lab.Lab
	node           *lab.Node
	cs             kubernetes.Interface
	client, server *lab.Pod
	listeners      []net.Listener
}

// start brings up the lab and the node, starts the agent and waits for
// it, attaches the client and server pods, and opens the server's ports.
func (e *env) start(ctx context.Context) error {
	var err error
	if e.dir, err = os.MkdirTemp("", "nodebridge-policyscale-"); err != nil {
		return fmt.Errorf("make temp dir: %w", err)
	}
	logf("building or reusing kube-apiserver and etcd (scripts/build-k8s.sh), building nodebridge and the agent")
	k8sBin, err := lab.Binaries(ctx)
	if err != nil {
		return err
	}
	bin := filepath.Join(e.dir, "bin")
	cnitool, err := lab.BuildWithTools(ctx, bin)
	if err != nil {
		return err
	}
	logf("starting etcd and kube-apiserver in a lab netns")
	e.lab, err = lab.Start(ctx, lab.Options{Prefix: testenv.NetnsPrefix(), Dir: filepath.Join(e.dir, "lab"), K8sBin: k8sBin,
		AgentBin: bin + "/nodebridge-agent", CNIBinDir: bin, CNITool: cnitool})
	if err != nil {
		return err
	}
	if err := e.lab.ApplyManifestRBAC(ctx); err != nil {
		return err
	}
	if e.cs, err = e.lab.AdminClient(); err != nil {
		return err
	}
	if e.node, err = e.lab.AddNode(ctx, nodeName, 1); err != nil {
		return err
	}
	spec := lab.NodeSpec{Name: nodeName, PodCIDRs: []netip.Prefix{podCIDR}, InternalIPs: []netip.Addr{lab.NodeIPv4(1)}}
	if err := lab.CreateNode(ctx, e.cs, spec); err != nil {
		return err
	}
	if err := e.node.StartAgent("--cluster-cidr=" + clusterCIDR); err != nil {
		return err
	}
	if err := e.node.WaitReady(ctx, 60*time.Second); err != nil {
		return err
	}
	logf("attaching the client and server pods")
	if e.client, err = e.node.AddPod(ctx, "probe-client"); err != nil {
		return err
	}
	if e.server, err = e.node.AddPod(ctx, "probe-server"); err != nil {
		return err
	}
	for _, port := range probePorts {
		ln, err := lab.Listen(e.server.Netns, "tcp4", fmt.Sprintf(":%d", port))
		if err != nil {
			return err
		}
		e.listeners = append(e.listeners, ln)
		go serve(ln)
	}
	return nil
}

// serve accepts and closes connections until ln closes.
func serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

// diagnose prints the tails of the agent's and the control plane's logs,
// for a run that failed.
func (e *env) diagnose() {
	if e.node != nil {
		logs := strings.Split(strings.TrimRight(e.node.AgentLogs(), "\n"), "\n")
		fmt.Fprintf(os.Stderr, "--- agent log, last lines:\n%s\n", strings.Join(logs[max(0, len(logs)-30):], "\n"))
	}
	if e.lab != nil {
		fmt.Fprint(os.Stderr, e.lab.ControlPlaneLogs())
	}
}

// close removes everything start made, past failures.
func (e *env) close() error {
	var err error
	for _, ln := range e.listeners {
		ln.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, p := range []*lab.Pod{e.client, e.server} {
		if p != nil {
			err = errors.Join(err, p.Close(ctx))
		}
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
