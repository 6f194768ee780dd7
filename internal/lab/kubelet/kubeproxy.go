package kubelet

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
)

// kubeProxyConfig is a node's KubeProxyConfiguration: the mode, the
// cluster CIDR (traffic from outside it to a Service is masqueraded), the
// node's name, health on every address of the node as a LoadBalancer's
// check expects, and no conntrack sysctl written: the table size is
// machine-wide, and the node netns's defaults serve.
func kubeProxyConfig(kubeconfig, mode, node string, clusterCIDR netip.Prefix) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: %q
mode: %s
clusterCIDR: %q
hostnameOverride: %q
healthzBindAddress: 0.0.0.0:10256
metricsBindAddress: 127.0.0.1:10249
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
`, kubeconfig, mode, clusterCIDR.String(), node)
}

// startKubeProxy runs kube-proxy in the node's namespaces, as the user
// system:kube-proxy, whom the API server's default policy grants
// system:node-proxier.
func (n *Node) startKubeProxy(bin, kubeconfig, mode string, clusterCIDR netip.Prefix) error {
	conf := filepath.Join(n.Dir, "kube-proxy.yaml")
	if err := os.WriteFile(conf, []byte(kubeProxyConfig(kubeconfig, mode, n.Name, clusterCIDR)), 0o644); err != nil {
		return fmt.Errorf("write kube-proxy config of %s: %w", n.Name, err)
	}
	var err error
	n.kubeProxy, err = startProc("kube-proxy "+n.Name, filepath.Join(n.Dir, "logs", "kube-proxy.log"),
		append(enter(n.holder), bin, "--config="+conf, "--v=1")...)
	return err
}

// routePodCIDRsFromLab gives the lab netns, where the API server runs, a
// route to every node's podCIDRs via the node, as a control-plane node
// running the cluster network has: the API server's proxy to a pod or a
// Service goes there directly.
func (c *Cluster) routePodCIDRsFromLab(ctx context.Context) error {
	cidrs, err := c.podCIDRs(ctx)
	if err != nil {
		return err
	}
	for _, n := range c.Nodes {
		for _, p := range cidrs[n.Name] {
			// Equivalent to: ip -n LAB route replace PODCIDR via NODE_IP proto static
			if _, err := run(ctx, "ip", "-n", c.Lab.Netns, "route", "replace", p, "via", n.IP.String(), "proto", "static"); err != nil {
				return fmt.Errorf("route %s of %s from the lab: %w", p, n.Name, err)
			}
		}
	}
	return nil
}
