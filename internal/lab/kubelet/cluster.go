// Package kubelet runs a real Kubernetes cluster on one machine for
// nodebridge's end-to-end tests and demo: the lab's control plane (etcd and
// kube-apiserver in the lab netns, see package lab) plus
// kube-controller-manager and kube-scheduler, and nodes that each are a lab
// node netns with a mount namespace of their own running Debian's
// containerd (CRI plugin, crun without cgroups) and a kubelet of the same
// release, with nodebridge and the reference portmap as their CNI plugins
// and a local image (busybox and a pause program) instead of a registry.
//
// Nothing it runs changes the machine: every network change is inside the
// lab's netns, and every file containerd, kubelet and libcni write lands in
// the cluster's dir through the node's mount namespace, which also shadows
// the machine-wide sysctls kubelet would set. Close stops every process,
// and with the namespaces every mount goes.
package kubelet

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"sync"

	"k8s.io/client-go/kubernetes"

	"github.com/nodebridge/nodebridge/internal/lab"
)

// Options says what the cluster runs and where it keeps its files.
type Options struct {
	Prefix    string // start of every netns name (testenv's per-process prefix in tests)
	Dir       string // all state and logs; the caller removes it after Close
	K8sBin    string // the dir of K8sBinaries
	CNIBinDir string // nodebridge and portmap (see BuildCNI), each node's /opt/cni/bin; empty with DaemonSet
	AgentBin  string // nodebridge-agent as a process; empty: the DaemonSet, or the cluster writes each conflist itself
	Image     string // the local image archive (see BuildImage)
	// DaemonSet installs nodebridge as the README tells an operator: this
	// image (make image's, its archive in Archives) in deploy/nodebridge.yaml,
	// applied with kubectl onto nodes whose /opt/cni/bin starts empty.
	DaemonSet   string
	Archives    []string     // more image archives every node imports (make image's)
	Nodes       int          // how many nodes, 1..9
	ClusterCIDR netip.Prefix // what the controller-manager cuts podCIDRs from; default 10.244.0.0/16
	// Reference runs the reference bridge + host-local in nodebridge's
	// place (CNIBinDir filled by LinkReference, AgentBin empty), with
	// static routes between the nodes: the baseline of the benchmarks.
	Reference bool
	// KubeProxy, "iptables" or "nftables", runs kube-proxy (K8sBin's) in
	// that mode on every node, CoreDNS (the e2e images' CoreDNSImage, in
	// Archives) as a Deployment behind ClusterDNS, and routes to every
	// podCIDR from the API server's netns, as a control-plane node running
	// the cluster network has: the Services, DNS and proxy the upstream e2e
	// suite needs. Empty: a stand-in for the kubernetes Service only.
	KubeProxy string
	// Subnets, 2, puts the nodes in two underlay subnets by turns (node-1
	// in 198.18.0.0/24, node-2 in 198.18.1.0/24, ...), routed by the lab
	// netns, which knows no pod route: the agents reach the other subnet
	// through VXLAN. 0 or 1: one segment.
	Subnets int
}

// Cluster is a running cluster.
type Cluster struct {
	Options
	Lab    *lab.Lab
	Nodes  []*Node
	Client *kubernetes.Clientset // the admin, from this process
	ctl    *controllers
}

// NodeName is the name of node index i (1-based).
func NodeName(i int) string { return fmt.Sprintf("node-%d", i) }

// Start brings the cluster up: lab and control plane, controllers, then
// every node at once. It returns once each node has a conflist (the
// agent's, or one the cluster wrote for the podCIDR the controller-manager
// allocated) and is Ready. On error it takes down what it started.
func Start(ctx context.Context, o Options) (_ *Cluster, err error) {
	if o.Nodes < 1 || o.Nodes > 9 {
		return nil, fmt.Errorf("nodes %d: want 1..9", o.Nodes)
	}
	if o.Subnets < 0 || o.Subnets > lab.Subnets {
		return nil, fmt.Errorf("subnets %d: want 0..%d", o.Subnets, lab.Subnets)
	}
	if o.Reference && o.Subnets > 1 {
		return nil, fmt.Errorf("subnets %d: the reference's static routes need one segment", o.Subnets)
	}
	if o.Reference && (o.AgentBin != "" || o.DaemonSet != "") {
		return nil, fmt.Errorf("agent %s%s: a reference cluster runs no agent", o.AgentBin, o.DaemonSet)
	}
	if o.DaemonSet != "" && (o.AgentBin != "" || o.CNIBinDir != "") {
		return nil, fmt.Errorf("DaemonSet %s: its init container installs the plugins and it runs the agent: no CNIBinDir %q or AgentBin %q",
			o.DaemonSet, o.CNIBinDir, o.AgentBin)
	}
	if o.KubeProxy != "" && o.KubeProxy != "iptables" && o.KubeProxy != "nftables" {
		return nil, fmt.Errorf("kube-proxy mode %q: want iptables or nftables", o.KubeProxy)
	}
	if !o.ClusterCIDR.IsValid() {
		o.ClusterCIDR = netip.MustParsePrefix("10.244.0.0/16")
	}
	c := &Cluster{Options: o}
	if c.Lab, err = lab.Start(ctx, lab.Options{Prefix: o.Prefix, Dir: filepath.Join(o.Dir, "lab"),
		K8sBin: o.K8sBin, AgentBin: o.AgentBin, CNIBinDir: o.CNIBinDir}); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, c.Logs())
			err = errors.Join(err, c.Close())
		}
	}()
	if c.Client, err = c.Lab.AdminClient(); err != nil {
		return nil, err
	}
	kubeconfig, err := c.Lab.AdminKubeconfig()
	if err != nil {
		return nil, err
	}
	if c.ctl, err = startControllers(c, kubeconfig); err != nil {
		return nil, err
	}
	if err := c.addNodes(ctx, kubeconfig); err != nil {
		return nil, err
	}
	if err := c.startNetworks(ctx); err != nil {
		return nil, err
	}
	if o.Reference {
		if err := c.addStaticRoutes(ctx); err != nil {
			return nil, err
		}
	}
	if o.KubeProxy != "" {
		if err := c.routePodCIDRsFromLab(ctx); err != nil {
			return nil, err
		}
		if err := c.installCoreDNS(ctx); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// addNodes starts every node concurrently: most of a node's start is
// waiting for containerd and kubelet.
func (c *Cluster) addNodes(ctx context.Context, kubeconfig string) error {
	var proxy *kubeProxySpec
	if c.KubeProxy != "" {
		kc, err := c.Lab.KubeProxyKubeconfig()
		if err != nil {
			return err
		}
		proxy = &kubeProxySpec{bin: filepath.Join(c.K8sBin, "kube-proxy"), kubeconfig: kc, mode: c.KubeProxy, clusterCIDR: c.ClusterCIDR}
	}
	nodes := make([]*Node, c.Options.Nodes)
	errs := make([]error, c.Options.Nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			name := NodeName(i + 1)
			nodes[i], errs[i] = addNode(ctx, c.Lab, nodeSpec{
				name: name, index: i + 1, subnet: i % max(c.Subnets, 1),
				dir: filepath.Join(c.Dir, "nodes", name), images: append([]string{c.Image}, c.Archives...),
				cniBinDir: c.CNIBinDir, kubeconfig: kubeconfig, kubelet: filepath.Join(c.K8sBin, "kubelet"),
				kubeProxy: proxy,
			})
		})
	}
	wg.Wait()
	for _, n := range nodes {
		if n != nil {
			c.Nodes = append(c.Nodes, n)
		}
	}
	return errors.Join(errs...)
}

// Kubectl runs kubectl as the admin inside the lab netns (the only place
// besides the nodes that reaches the API server) and returns its combined
// output.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) (string, error) {
	kc, err := c.Lab.AdminKubeconfig()
	if err != nil {
		return "", err
	}
	argv := append([]string{"ip", "netns", "exec", c.Lab.Netns, filepath.Join(c.K8sBin, "kubectl"), "--kubeconfig=" + kc}, args...)
	return run(ctx, argv...)
}

// Logs is the end of every log of the cluster, for a failure message.
func (c *Cluster) Logs() string {
	s := c.Lab.ControlPlaneLogs()
	if c.ctl != nil {
		s += c.ctl.logs()
	}
	for _, n := range c.Nodes {
		s += n.Logs()
	}
	return s
}

// Close takes every node down, then the controllers, then the lab. It
// keeps going past a failed step and leaves Dir to the caller.
func (c *Cluster) Close() error {
	errs := make([]error, len(c.Nodes))
	var wg sync.WaitGroup
	for i, n := range c.Nodes {
		wg.Go(func() { errs[i] = n.Close() })
	}
	wg.Wait()
	err := errors.Join(errs...)
	if c.ctl != nil {
		err = errors.Join(err, c.ctl.stop())
	}
	if c.Lab != nil {
		err = errors.Join(err, c.Lab.Close())
	}
	return err
}
