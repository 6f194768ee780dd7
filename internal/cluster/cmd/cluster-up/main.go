// Command cluster-up brings up the kubelet cluster of package cluster on
// this machine (as root, from inside the nodebridge tree), prints its nodes
// and how to reach it, keeps it up until SIGINT or SIGTERM (or, with
// -check, only until its nodes are Ready) and takes it down, leaving the
// machine as it was.
//
//	go run ./internal/cluster/cmd/cluster-up -nodes 3
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/nodebridge/nodebridge/internal/cluster"
)

func main() {
	nodes := flag.Int("nodes", 3, "how many nodes, 1..9")
	agent := flag.Bool("agent", true, "run nodebridge-agent on each node (else write each conflist, no routes)")
	check := flag.Bool("check", false, "take the cluster down as soon as it is up")
	flag.Parse()
	if err := run(*nodes, *agent, *check); err != nil {
		fmt.Fprintln(os.Stderr, "cluster-up:", err)
		os.Exit(1)
	}
}

func run(nodes int, withAgent, check bool) (err error) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "nodebridge-cluster-")
	if err != nil {
		return fmt.Errorf("make cluster dir: %w", err)
	}
	defer func() {
		if rmErr := os.RemoveAll(dir); rmErr != nil && err == nil {
			err = fmt.Errorf("remove %s: %w", dir, rmErr)
		}
	}()
	o := cluster.Options{Prefix: fmt.Sprintf("nbc%x-", os.Getpid()), Dir: dir, Nodes: nodes,
		CNIBinDir: filepath.Join(dir, "cni-bin"), Image: filepath.Join(dir, "image.tar")}
	if err := step("build", func() error { return build(ctx, &o, withAgent) }); err != nil {
		return err
	}
	var c *cluster.Cluster
	if err := step("start", func() (err error) { c, err = cluster.Start(ctx, o); return err }); err != nil {
		return err
	}
	defer func() {
		if closeErr := step("take down", c.Close); closeErr != nil && err == nil {
			err = closeErr
		}
	}()
	out, err := c.Kubectl(ctx, "get", "nodes", "-o", "wide")
	fmt.Print(out)
	if err != nil || check {
		return err
	}
	kc, err := c.Lab.AdminKubeconfig()
	if err != nil {
		return err
	}
	fmt.Printf("\nkubectl: ip netns exec %s %s --kubeconfig=%s get pods -A -o wide\n", c.Lab.Netns,
		filepath.Join(o.K8sBin, "kubectl"), kc)
	fmt.Println("a node's shell: nsenter --target <pid of its kubelet> --mount --net")
	fmt.Println("up until ^C or SIGTERM")
	<-ctx.Done()
	return nil
}

// build fills in the binaries, the CNI bin dir, the local image and (with
// withAgent) the agent.
func build(ctx context.Context, o *cluster.Options, withAgent bool) error {
	var err error
	if o.K8sBin, err = cluster.K8sBinaries(ctx); err != nil {
		return err
	}
	if err := os.Mkdir(o.CNIBinDir, 0o755); err != nil {
		return fmt.Errorf("make CNI bin dir: %w", err)
	}
	if err := cluster.BuildCNI(ctx, o.CNIBinDir); err != nil {
		return err
	}
	pause := filepath.Join(o.Dir, "pause")
	if err := cluster.BuildPause(ctx, pause); err != nil {
		return err
	}
	if err := cluster.BuildImage(ctx, o.Image, "/bin/busybox", pause); err != nil {
		return err
	}
	if withAgent {
		o.AgentBin, err = cluster.BuildAgent(ctx, o.Dir)
	}
	return err
}

// step runs f and prints how long it took.
func step(name string, f func() error) error {
	t0 := time.Now()
	err := f()
	fmt.Printf("%-10s %v\n", name, time.Since(t0).Round(time.Millisecond))
	return err
}
