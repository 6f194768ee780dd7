package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nodebridge/nodebridge/internal/lab/kubelet"
)

// env is what both clusters share: the binaries, the image, and the temp
// dir that holds them and each cluster's state.
type env struct {
	o      options
	dir    string
	k8sBin string
	image  string
	agent  string
	cniNB  string // nodebridge, portmap, loopback
	cniRef string // the reference bridge, host-local, portmap, loopback
}

// newEnv makes the temp dir.
func newEnv(o options) (*env, error) {
	dir, err := os.MkdirTemp("", "nodebridge-podstart-")
	if err != nil {
		return nil, fmt.Errorf("make temp dir: %w", err)
	}
	return &env{o: o, dir: dir, image: filepath.Join(dir, "image.tar"),
		cniNB: filepath.Join(dir, "cni-nodebridge"), cniRef: filepath.Join(dir, "cni-reference")}, nil
}

// close removes the temp dir; the clusters are closed by then.
func (e *env) close() error {
	if err := os.RemoveAll(e.dir); err != nil {
		return fmt.Errorf("remove %s: %w", e.dir, err)
	}
	return nil
}

// build fills the env: the Kubernetes binaries (cached outside the tree),
// both CNI bin dirs, the local image and the agent.
func (e *env) build(ctx context.Context) error {
	var err error
	if e.k8sBin, err = kubelet.K8sBinaries(ctx); err != nil {
		return err
	}
	for _, d := range []string{e.cniNB, e.cniRef} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return fmt.Errorf("make CNI bin dir: %w", err)
		}
	}
	if err := kubelet.BuildCNI(ctx, e.cniNB); err != nil {
		return err
	}
	if err := kubelet.LinkReference(e.cniRef, e.o.tools); err != nil {
		return err
	}
	pause := filepath.Join(e.dir, "pause")
	if err := kubelet.BuildPause(ctx, pause); err != nil {
		return err
	}
	if err := kubelet.BuildImage(ctx, e.image, "/bin/busybox", pause); err != nil {
		return err
	}
	e.agent, err = kubelet.BuildAgent(ctx, e.dir)
	return err
}

// startCluster starts a cluster running network and checks its conflists
// run the plugin they should.
func (e *env) startCluster(ctx context.Context, network string) (_ *kubelet.Cluster, res networkResult, err error) {
	res.Network = network
	o := kubelet.Options{Prefix: netnsPrefix(), Dir: filepath.Join(e.dir, network),
		K8sBin: e.k8sBin, Image: e.image, Nodes: e.o.nodes, CNIBinDir: e.cniNB, AgentBin: e.agent}
	if network == "reference" {
		o.CNIBinDir, o.AgentBin, o.Reference = e.cniRef, "", true
	}
	if err := os.Mkdir(o.Dir, 0o755); err != nil {
		return nil, res, fmt.Errorf("make dir of the %s cluster: %w", network, err)
	}
	logf("%s: starting a cluster of %d nodes", network, e.o.nodes)
	t0 := time.Now()
	c, err := kubelet.Start(ctx, o)
	if err != nil {
		return nil, res, fmt.Errorf("start the %s cluster: %w", network, err)
	}
	res.ClusterUpMs = ms(time.Since(t0))
	if res.Plugin, err = pluginType(c); err == nil {
		if want := map[string]string{"nodebridge": "nodebridge", "reference": "bridge"}[network]; res.Plugin != want {
			err = fmt.Errorf("the %s cluster's conflists run %q, want %q", network, res.Plugin, want)
		}
	}
	if err != nil {
		return nil, res, errors.Join(err, c.Close())
	}
	return c, res, nil
}

// pluginType reads the first plugin's type from every node's conflist,
// which must agree: the proof of which plugin the pods got.
func pluginType(c *kubelet.Cluster) (string, error) {
	var typ string
	for _, n := range c.Nodes {
		path := filepath.Join(n.ConfDir, "10-"+kubelet.NetworkName+".conflist")
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("read conflist of %s: %w", n.Name, err)
		}
		var l struct {
			Plugins []struct {
				Type string `json:"type"`
			} `json:"plugins"`
		}
		if err := json.Unmarshal(b, &l); err != nil || len(l.Plugins) == 0 {
			return "", fmt.Errorf("conflist %s: no plugins (%v)", path, err)
		}
		if typ != "" && l.Plugins[0].Type != typ {
			return "", fmt.Errorf("conflist %s: type %q, another node has %q", path, l.Plugins[0].Type, typ)
		}
		typ = l.Plugins[0].Type
	}
	return typ, nil
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// netnsPrefix starts the name of every netns the bench's clusters make, so
// the run's snapshots (testenv.State) tell them from other processes'.
func netnsPrefix() string { return fmt.Sprintf("nbd10%x-", os.Getpid()) }
