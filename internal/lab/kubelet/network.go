package kubelet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NetworkName is the CNI network of every node, as the agent names it by
// default.
const NetworkName = "nodebridge"

// startNetworks gives every node its conflist and waits until all are
// Ready: with DaemonSet or AgentBin, each node's agent writes it; without,
// the cluster writes one for the node's podCIDR (no routes between nodes
// then).
func (c *Cluster) startNetworks(ctx context.Context) error {
	if c.DaemonSet != "" {
		if err := c.installDaemonSet(ctx); err != nil {
			return err
		}
		errs := make([]error, len(c.Nodes))
		for i, n := range c.Nodes {
			errs[i] = c.waitNodeReady(ctx, n)
		}
		return errors.Join(errs...)
	}
	var agentKC string
	if c.AgentBin != "" {
		if err := c.applyAgentRBAC(ctx); err != nil {
			return err
		}
		var err error
		if agentKC, err = c.Lab.AgentKubeconfig(); err != nil {
			return err
		}
	}
	errs := make([]error, len(c.Nodes))
	var wg sync.WaitGroup
	for i, n := range c.Nodes {
		wg.Go(func() {
			if c.AgentBin != "" {
				errs[i] = n.StartAgent(c.AgentBin, agentKC, c.agentFlags()...)
			} else {
				errs[i] = c.writeConflist(ctx, n)
			}
			if errs[i] == nil {
				errs[i] = c.waitNodeReady(ctx, n)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// agentFlags are the flags every agent of the cluster gets: the cluster
// CIDR the controller-manager cuts podCIDRs from (IPv4 or IPv6), as an
// operator passes it; the cluster has no kubeadm-config to read it from.
func (c *Cluster) agentFlags() []string {
	return []string{"--cluster-cidr=" + c.ClusterCIDR.String()}
}

// applyAgentRBAC applies the ServiceAccount, ClusterRole and binding of
// deploy/nodebridge.yaml, so the agents run with exactly the manifest's
// permissions.
func (c *Cluster) applyAgentRBAC(ctx context.Context) error {
	return c.Lab.ApplyManifestRBAC(ctx)
}

// writeConflist waits for the podCIDRs the controller-manager allocates the
// Node, then writes the conflist an agent would (its fields as in the
// agent's contract, but no nonMasqueradeCIDRs and no routes), atomically.
func (c *Cluster) writeConflist(ctx context.Context, n *Node) error {
	var cidrs []string
	err := poll(ctx, 100*time.Millisecond, func() error {
		if err := n.alive(); err != nil {
			return permanent(err)
		}
		node, err := c.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("get node %s: %w", n.Name, err)
		}
		if cidrs = node.Spec.PodCIDRs; len(cidrs) == 0 {
			return fmt.Errorf("node %s: no podCIDRs yet", n.Name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("wait for podCIDRs of %s: %w\n%s", n.Name, err, n.Logs())
	}
	b, err := c.conflist(n.DataDir, cidrs)
	if err != nil {
		return err
	}
	tmp := filepath.Join(n.ConfDir, ".10-"+NetworkName+".conflist.tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write conflist of %s: %w", n.Name, err)
	}
	if err := os.Rename(tmp, filepath.Join(n.ConfDir, "10-"+NetworkName+".conflist")); err != nil {
		return fmt.Errorf("install conflist of %s: %w", n.Name, err)
	}
	return nil
}

// Conflist is the nodebridge + portmap network list for a node with the
// given podCIDRs, host-local state in dataDir. Its cniVersion is 1.0.0, the
// newest the libcni inside Debian's containerd 1.6 parses: with 1.1.0 every
// pod's ADD fails with "unsupported CNI result version".
func Conflist(dataDir string, podCIDRs ...string) ([]byte, error) {
	var ranges [][]map[string]string
	for _, s := range podCIDRs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("podCIDR %q: %w", s, err)
		}
		ranges = append(ranges, []map[string]string{{"subnet": p.Masked().String()}})
	}
	b, err := json.Marshal(map[string]any{
		"cniVersion": "1.0.0",
		"name":       NetworkName,
		"plugins": []map[string]any{
			{
				"type": "nodebridge", "bridge": "cni0", "isGateway": true, "isDefaultGateway": true,
				"ipMasq": true, "hairpinMode": true,
				"ipam": map[string]any{"type": "host-local", "dataDir": dataDir, "ranges": ranges},
			},
			{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}, "snat": true},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("encode conflist: %w", err)
	}
	return b, nil
}

// waitNodeReady polls the Node until its Ready condition is True.
func (c *Cluster) waitNodeReady(ctx context.Context, n *Node) error {
	name := n.Name
	err := poll(ctx, 200*time.Millisecond, func() error {
		if err := n.alive(); err != nil {
			return permanent(err)
		}
		node, err := c.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("get node %s: %w", name, err)
		}
		for _, cond := range node.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				if cond.Status == corev1.ConditionTrue {
					return nil
				}
				return fmt.Errorf("node %s not ready: %s: %s", name, cond.Reason, cond.Message)
			}
		}
		return fmt.Errorf("node %s: no Ready condition yet", name)
	})
	if err != nil {
		return fmt.Errorf("wait for node %s ready: %w", name, err)
	}
	return nil
}
