// Command demo-cluster is `make demo-cluster`: three real Kubernetes nodes
// on this machine (package internal/lab/kubelet: each a netns and mount namespace with
// its own containerd and kubelet) under a real control plane, with
// nodebridge installed as the README tells an operator: make image, the
// archive imported into each node's containerd, kubectl apply of
// deploy/nodebridge.yaml with the image's name. It places a pod on each node through
// the scheduler, prints `kubectl get nodes,pods -o wide`, each node's agent
// routes and pings between the pods across nodes, with the time each step
// took, and takes everything down. With -keep it stays up, printing how to
// reach it, until SIGINT or SIGTERM.
//
// It needs root, and leaves the machine as it found it, on ^C too: every
// change is inside netns and mount namespaces it makes, and every file in
// one temp dir it removes.
//
//	go run ./hack/demo-cluster [-nodes 3] [-keep]
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

	"github.com/nodebridge/nodebridge/internal/lab"
	"github.com/nodebridge/nodebridge/internal/lab/kubelet"
)

func main() {
	nodes := flag.Int("nodes", 3, "how many nodes, 2..9")
	keep := flag.Bool("keep", false, "after the demo, keep the cluster up until SIGINT or SIGTERM")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, *nodes, *keep)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo-cluster:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, nodes int, keep bool) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("needs root: it creates network and mount namespaces")
	}
	if nodes < 2 || nodes > 9 {
		return fmt.Errorf("-nodes %d: want 2..9 (pings go across nodes)", nodes)
	}
	d := &demo{t0: time.Now()}
	if d.dir, err = os.MkdirTemp("", "nodebridge-demo-cluster-"); err != nil {
		return fmt.Errorf("make temp dir: %w", err)
	}
	defer func() {
		err = errors.Join(err, d.step("take down", d.close))
		d.printTimes()
	}()
	o := kubelet.Options{Prefix: fmt.Sprintf("nbd10%x-", os.Getpid()), Dir: d.dir, Nodes: nodes,
		Image: filepath.Join(d.dir, "image.tar")}
	if err := d.step("build", func() error { return build(ctx, &o) }); err != nil {
		return err
	}
	if err := d.step("start cluster", func() (err error) { d.c, err = kubelet.Start(ctx, o); return err }); err != nil {
		if ctx.Err() != nil {
			// Signalled: the logs of a half-started cluster that come
			// with err say nothing.
			return fmt.Errorf("start cluster: interrupted: %w", ctx.Err())
		}
		return err
	}
	fmt.Printf("%d nodes Ready, podCIDRs from the controller-manager, conflists from nodebridge-agent, the DaemonSet of\n"+
		"deploy/nodebridge.yaml with image %s (kubectl apply)\n", nodes, o.DaemonSet)
	if err := d.show(ctx); err != nil {
		return err
	}
	if keep {
		return d.keep(ctx)
	}
	return nil
}

// show is the demo proper, once the cluster is up.
func (d *demo) show(ctx context.Context) error {
	if err := d.step("pods Ready", func() error { return d.createPods(ctx) }); err != nil {
		return err
	}
	if err := d.step("kubectl get", func() error { return d.printKubectl(ctx) }); err != nil {
		return err
	}
	if err := d.step("node routes", func() error { return d.printRoutes(ctx) }); err != nil {
		return err
	}
	return d.step("pings", func() error { return d.pingAcross(ctx) })
}

// build fills in the Kubernetes binaries, the local image (busybox and
// pause, for the pods) and nodebridge's image as make image builds it.
func build(ctx context.Context, o *kubelet.Options) error {
	var err error
	if o.K8sBin, err = kubelet.K8sBinaries(ctx); err != nil {
		return err
	}
	pause := filepath.Join(o.Dir, "pause")
	if err := kubelet.BuildPause(ctx, pause); err != nil {
		return err
	}
	if err := kubelet.BuildImage(ctx, o.Image, "/bin/busybox", pause); err != nil {
		return err
	}
	version, err := kubelet.ImageVersion(ctx, "")
	if err != nil {
		return err
	}
	im, err := kubelet.BuildNodebridgeImage(ctx, filepath.Join(o.Dir, "images"), version)
	if err != nil {
		return err
	}
	o.DaemonSet, o.Archives = im.Name, []string{im.Archive}
	return nil
}

// keep prints how to reach the cluster and how to end it, and waits for
// the signal that ends it.
func (d *demo) keep(ctx context.Context) error {
	kc, err := d.c.Lab.AdminKubeconfig()
	if err != nil {
		return err
	}
	kubectl := filepath.Join(d.c.K8sBin, "kubectl")
	fmt.Printf("\n== the cluster stays up (this process, pid %d, in the foreground)\n", os.Getpid())
	fmt.Printf("kubectl, as admin: the API server (%s) is reachable only from the lab netns and the nodes:\n",
		lab.APIServerURL())
	fmt.Printf("  ip netns exec %s %s --kubeconfig %s get nodes,pods -o wide\n", d.c.Lab.Netns, kubectl, kc)
	for _, n := range d.c.Nodes {
		fmt.Printf("node %s's network: ip netns exec %s ip route\n", n.Name, n.Netns)
	}
	fmt.Printf("take it down: ^C here, or kill -TERM %d (or -INT); everything goes, %s included\n", os.Getpid(), d.dir)
	<-ctx.Done()
	fmt.Println("\nsignalled: taking the cluster down")
	return nil
}
