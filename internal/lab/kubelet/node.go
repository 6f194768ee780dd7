package kubelet

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nodebridge/nodebridge/internal/lab"
)

// The node's CNI dirs as its kubelet, containerd and pods see them, as on
// any node: the lab node's ConfDir and DataDir and the cluster's (or the
// node's own) CNI bin dir are bound over them.
const (
	cniConfDir  = "/etc/cni/net.d"
	cniBinDir   = "/opt/cni/bin"
	ipamDataDir = "/var/lib/cni/networks"
)

// Node is a Kubernetes node of the cluster: a lab node (netns on the
// underlay, FORWARD policy DROP, its own CNI conf dir) with a mount
// namespace of its own, in which the node's containerd and kubelet run and
// keep all their state under Dir.
type Node struct {
	*lab.Node
	IP  netip.Addr // the node IP on the underlay, its InternalIP
	Dir string     // containerd and kubelet roots, overlay upper dirs, logs

	cniBinDir           string
	holder              *proc // holds the mount namespace
	containerd, kubelet *proc
	agent               *proc // nil unless StartAgent
	kubeProxy           *proc // nil unless the cluster runs kube-proxy
}

// nodeSpec is what addNode needs from the cluster.
type nodeSpec struct {
	name       string
	index      int            // 1..9: the node IP is 198.18.<subnet>.1<index>
	subnet     int            // the lab's underlay subnet
	dir        string         // the node's own dir
	images     []string       // image archives to import
	cniBinDir  string         // bound over /opt/cni/bin; empty: a dir of the node's own, empty
	kubeconfig string         // the kubelet's
	kubelet    string         // the kubelet binary
	kubeProxy  *kubeProxySpec // nil: a stand-in for the kubernetes Service instead
}

// kubeProxySpec is how the cluster's kube-proxy runs on each node.
type kubeProxySpec struct {
	bin, kubeconfig, mode string
	clusterCIDR           netip.Prefix
}

// addNode makes a lab node and starts its mount namespace, containerd
// (with the local image imported) and kubelet. On error it undoes what it
// made.
func addNode(ctx context.Context, l *lab.Lab, s nodeSpec) (_ *Node, err error) {
	ln, err := l.AddNodeIn(ctx, s.name, s.index, s.subnet)
	if err != nil {
		return nil, fmt.Errorf("add lab node %s: %w", s.name, err)
	}
	n := &Node{Node: ln, IP: ln.IPv4(), Dir: s.dir, cniBinDir: s.cniBinDir}
	defer func() {
		if err != nil {
			err = errors.Join(err, n.Close())
		}
	}()
	binDir := s.cniBinDir
	if binDir == "" { // a fresh node: the DaemonSet's init container fills it
		binDir = filepath.Join(s.dir, "cni-bin")
		if err := os.MkdirAll(binDir, 0o755); err != nil {
			return nil, fmt.Errorf("make CNI bin dir of %s: %w", s.name, err)
		}
	}
	n.cniBinDir = binDir
	binds := []bind{{n.ConfDir, cniConfDir}, {binDir, cniBinDir}, {n.DataDir, ipamDataDir}}
	if n.holder, err = startHolder(ctx, s.name, n.Netns, s.dir, binds); err != nil {
		return nil, err
	}
	dns := ""
	if s.kubeProxy == nil {
		if err := n.serviceStandIn(ctx); err != nil {
			return nil, err
		}
	} else {
		dns = ClusterDNS
		if err := n.startKubeProxy(s.kubeProxy.bin, s.kubeProxy.kubeconfig, s.kubeProxy.mode, s.kubeProxy.clusterCIDR); err != nil {
			return nil, err
		}
	}
	if err := n.startContainerd(ctx, s.images...); err != nil {
		return nil, err
	}
	if err := n.startKubelet(s.kubeconfig, s.kubelet, dns); err != nil {
		return nil, err
	}
	return n, nil
}

// Exec runs argv in the node's netns and mount namespace, where its
// kubelet and containerd live (e.g. ctr, ip, iptables), and returns the
// combined output.
func (n *Node) Exec(ctx context.Context, argv ...string) (string, error) {
	return run(ctx, append(enter(n.holder), argv...)...)
}

// alive returns an error naming the node's containerd, kubelet or agent
// once one has exited.
func (n *Node) alive() error {
	return errors.Join(n.containerd.alive(), n.kubelet.alive(), n.agent.alive(), n.kubeProxy.alive())
}

// Logs is the end of the node's kubelet and containerd logs, for a failure.
func (n *Node) Logs() string {
	s := n.kubelet.logTail(40) + n.containerd.logTail(20)
	if n.agent != nil {
		s += n.agent.logTail(20)
	}
	if n.kubeProxy != nil {
		s += n.kubeProxy.logTail(20)
	}
	return s
}

// Close stops the kubelet and containerd, kills what they leave running
// (shims and containers), ends the mount namespace (all its mounts go with
// it) and closes the lab node (its netns goes, with every pod veth). It
// keeps going past a failed step. The Node object is the caller's.
func (n *Node) Close() error {
	err := n.StopAgent()
	if n.kubeProxy != nil {
		err = errors.Join(err, n.kubeProxy.stop(10*time.Second))
	}
	if n.kubelet != nil {
		err = errors.Join(err, n.kubelet.stop(10*time.Second))
	}
	if n.containerd != nil {
		err = errors.Join(err, n.containerd.stop(10*time.Second))
	}
	if n.holder != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err = errors.Join(err, sweep(ctx, n.holder))
		cancel()
		// The holder ends by SIGTERM, the normal way: no error to report.
		_ = n.holder.stop(5 * time.Second)
	}
	err = errors.Join(err, n.Node.Close())
	return err
}

// MemoryRSS sums the resident memory of every process of the node: the
// namespace holder, containerd, kubelet, and the shims and containers
// (pause included) that run in or under its mount namespace.
func (n *Node) MemoryRSS() (int64, error) {
	mnt, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", n.holder.pid()))
	if err != nil {
		return 0, fmt.Errorf("read mount namespace of %s: %w", n.Name, err)
	}
	var sum int64
	for _, pid := range append(nodeProcs(mnt, n.holder.pid()), n.holder.pid()) {
		sum += rssBytes(pid)
	}
	return sum, nil
}

// rssBytes is VmRSS of /proc/PID/status in bytes, 0 for a process gone.
func rssBytes(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64) // 0 if odd
			return kb << 10
		}
	}
	return 0
}
