package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nodebridge/nodebridge/internal/lab"
)

// flannelNetConf is flanneld's --net-config-path file: the cluster CIDR,
// and host-gw, the backend that routes as the agent does (a peer's
// podCIDR via its underlay address, no encapsulation).
func flannelNetConf() ([]byte, error) {
	conf := map[string]any{"Network": clusterCIDR.String(), "Backend": map[string]string{"Type": "host-gw"}}
	b, err := json.Marshal(conf)
	if err != nil {
		return nil, fmt.Errorf("encode flannel net-conf: %w", err)
	}
	return b, nil
}

// flannelArgs is flanneld's command line in the node netns: the kube
// subnet manager (leases are the Nodes' podCIDRs), the node's uplink, and
// files in dir.
func flannelArgs(bin, kubeconfig, dir string) []string {
	return []string{bin,
		"--kube-subnet-mgr",
		"--kubeconfig-file=" + kubeconfig,
		"--iface=eth0",
		"--net-config-path=" + filepath.Join(dir, "net-conf.json"),
		"--subnet-file=" + filepath.Join(dir, "subnet.env"),
	}
}

// flannelEnv names the node flanneld runs as; POD_NAME and POD_NAMESPACE
// are what a DaemonSet pod would carry, unused while NODE_NAME is set.
func flannelEnv(node string) []string {
	return []string{"NODE_NAME=" + node, "POD_NAME=kube-flannel-ds-" + node, "POD_NAMESPACE=kube-flannel", "KUBECONFIG="}
}

// startFlannel runs flanneld in the current node's netns as that node and
// waits until it has written its subnet file: its lease is taken and its
// backend registered. It runs as the lab admin (system:masters): flannel
// needs to get, list and watch Nodes and patch its own Node and its
// status, which admin covers in a throwaway lab.
func (e *env) startFlannel(ctx context.Context) (*lab.Process, error) {
	dir := filepath.Join(e.dir, "flannel")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("make flannel dir: %w", err)
	}
	conf, err := flannelNetConf()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "net-conf.json"), conf, 0o644); err != nil {
		return nil, fmt.Errorf("write flannel net-conf: %w", err)
	}
	kc, err := e.lab.AdminKubeconfig()
	if err != nil {
		return nil, err
	}
	argv := append([]string{"ip", "netns", "exec", e.node.Netns}, flannelArgs(e.o.flannel, kc, dir)...)
	p, err := lab.StartProcess("flanneld "+e.node.Name, filepath.Join(e.dir, "flanneld.log"), flannelEnv(e.node.Name), argv...)
	if err != nil {
		return nil, err
	}
	e.flanneld = p
	return p, waitFile(ctx, p, filepath.Join(dir, "subnet.env"))
}

// waitFile polls until path exists, failing if p exits first.
func waitFile(ctx context.Context, p *lab.Process, path string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if done, err := p.Exited(); done {
			return fmt.Errorf("%s exited before writing %s (%v):\n%s", p.Name, path, err, lastLines(p.Logs(), 30))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s of %s: %w", path, p.Name, ctx.Err())
		case <-tick.C:
		}
	}
}
