package kubelet

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// referencePlugins are what a reference cluster's CNI bin dir holds: the
// containernetworking/plugins binaries that stand in for nodebridge
// (bridge, host-local) and the two every cluster runs beside it.
func referencePlugins() []string { return []string{"bridge", "host-local", "portmap", "loopback"} }

// LinkReference fills dir, the CNIBinDir of a cluster with Reference set,
// with links to the reference plugins in toolsDir (where
// scripts/install-deps.sh installs v1.9.1). It names every plugin missing.
func LinkReference(dir, toolsDir string) error {
	var missing []string
	for _, p := range referencePlugins() {
		src := filepath.Join(toolsDir, p)
		if _, err := os.Stat(src); err != nil {
			missing = append(missing, p)
			continue
		}
		if err := os.Symlink(src, filepath.Join(dir, p)); err != nil {
			return fmt.Errorf("link reference %s into %s: %w", p, dir, err)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("reference plugins %v not in %s: run scripts/install-deps.sh", missing, toolsDir)
	}
	return nil
}

// ReferenceConflist is Conflist with the reference bridge in nodebridge's
// place: every other field, host-local IPAM and the chained portmap
// included, is the same, so a comparison of the two measures the plugins
// and not their configuration.
func ReferenceConflist(dataDir string, podCIDRs ...string) ([]byte, error) {
	b, err := Conflist(dataDir, podCIDRs...)
	if err != nil {
		return nil, err
	}
	var l struct {
		CNIVersion string           `json:"cniVersion"`
		Name       string           `json:"name"`
		Plugins    []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("decode conflist: %w", err)
	}
	l.Plugins[0]["type"] = "bridge"
	if b, err = json.Marshal(l); err != nil {
		return nil, fmt.Errorf("encode reference conflist: %w", err)
	}
	return b, nil
}

// podCIDRs maps each node's name to the podCIDRs of its Node.
func (c *Cluster) podCIDRs(ctx context.Context) (map[string][]string, error) {
	cidrs := map[string][]string{}
	for _, n := range c.Nodes {
		node, err := c.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("get node %s: %w", n.Name, err)
		}
		cidrs[n.Name] = node.Spec.PodCIDRs
	}
	return cidrs, nil
}

// conflist is the conflist the cluster writes for a node when no agent
// does: nodebridge's, or the reference's with Reference.
func (c *Cluster) conflist(dataDir string, podCIDRs []string) ([]byte, error) {
	if c.Reference {
		return ReferenceConflist(dataDir, podCIDRs...)
	}
	return Conflist(dataDir, podCIDRs...)
}

// addStaticRoutes does by hand, once, what the agent does for nodebridge,
// so the reference network connects pods across nodes too: on every node a
// route to each other node's podCIDRs via that node's IP, and FORWARD
// accepts for the cluster CIDR, since each node's FORWARD policy is DROP.
// Each node's netns takes them all with it when it goes.
func (c *Cluster) addStaticRoutes(ctx context.Context) error {
	cidrs, err := c.podCIDRs(ctx)
	if err != nil {
		return err
	}
	for _, n := range c.Nodes {
		cc := c.ClusterCIDR.String()
		// Equivalent to: iptables -A FORWARD -s CLUSTER_CIDR -j ACCEPT (and -d)
		argvs := [][]string{
			{"iptables", "-w", "-A", "FORWARD", "-s", cc, "-j", "ACCEPT"},
			{"iptables", "-w", "-A", "FORWARD", "-d", cc, "-j", "ACCEPT"},
		}
		for _, peer := range c.Nodes {
			for _, p := range cidrs[peer.Name] {
				if peer != n {
					// Equivalent to: ip route replace PODCIDR via PEER_IP dev eth0 proto static
					argvs = append(argvs, []string{"ip", "route", "replace", p, "via", peer.IP.String(),
						"dev", "eth0", "proto", "static"})
				}
			}
		}
		for _, argv := range argvs {
			if _, err := n.Exec(ctx, argv...); err != nil {
				return fmt.Errorf("add static route or rule on %s: %w", n.Name, err)
			}
		}
	}
	return nil
}
