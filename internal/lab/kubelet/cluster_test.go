package kubelet

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// startCluster builds what a cluster needs and starts one with n nodes
// whose conflists it writes itself (no agent), closed when t ends; it logs
// how long the start took and the memory of each node.
func startCluster(t *testing.T, ctx context.Context, n int) *Cluster {
	t.Helper()
	testenv.RequireRoot(t)
	dir := t.TempDir()
	cniBin := filepath.Join(dir, "cni-bin")
	if err := os.Mkdir(cniBin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := BuildCNI(ctx, cniBin); err != nil {
		t.Fatal(err)
	}
	return start(t, ctx, Options{Dir: dir, CNIBinDir: cniBin, Nodes: n})
}

// startDaemonSetCluster starts a cluster of n nodes on which nodebridge is
// installed as the README tells an operator: make image, the archive
// imported into each node's containerd, kubectl apply of the manifest. It
// builds a second image, version suffix -update, imported too, for a
// rolling update, and returns it.
func startDaemonSetCluster(t *testing.T, ctx context.Context, n, subnets int) (*Cluster, Image) {
	t.Helper()
	testenv.RequireRoot(t)
	dir := t.TempDir()
	v, err := ImageVersion(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var images [2]Image
	for i, suffix := range []string{"", "-update"} {
		if images[i], err = BuildNodebridgeImage(ctx, filepath.Join(dir, "images"), v+suffix); err != nil {
			t.Fatal(err)
		}
	}
	return start(t, ctx, Options{Dir: dir, Nodes: n, DaemonSet: images[0].Name, Subnets: subnets,
		Archives: []string{images[0].Archive, images[1].Archive}}), images[1]
}

// start fills in o's binaries, local image and netns prefix and starts the
// cluster, closed when t ends.
func start(t *testing.T, ctx context.Context, o Options) *Cluster {
	t.Helper()
	var err error
	if o.K8sBin, err = K8sBinaries(ctx); err != nil {
		t.Fatal(err)
	}
	pause := filepath.Join(o.Dir, "pause")
	o.Image = filepath.Join(o.Dir, "image.tar")
	if err := BuildPause(ctx, pause); err != nil {
		t.Fatal(err)
	}
	if err := BuildImage(ctx, o.Image, "/bin/busybox", pause); err != nil {
		t.Fatal(err)
	}
	o.Prefix = testenv.NetnsPrefix()
	t0 := time.Now()
	c, err := Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	n := o.Nodes
	t.Logf("cluster of %d nodes up in %v", n, time.Since(t0).Round(time.Millisecond))
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(c.Logs())
		}
		if err := c.Close(); err != nil {
			t.Errorf("close cluster: %v", err)
		}
	})
	return c
}

// TestNodesReadyWithPodCIDRsAndPodsOnEach runs the cluster without agents
// (it writes each node's conflist itself, as the reference-plugin bench
// does): nodes Ready with distinct podCIDRs from the controller-manager, a
// pod on each with an IP from its node's podCIDR, seen through kubectl exec.
func TestNodesReadyWithPodCIDRsAndPodsOnEach(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := startCluster(t, ctx, 3)

	cidrs := map[string]netip.Prefix{}
	for _, n := range c.Nodes {
		node, err := c.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p, err := netip.ParsePrefix(node.Spec.PodCIDR)
		if err != nil || p.Bits() != 24 || !c.ClusterCIDR.Overlaps(p) {
			t.Fatalf("node %s podCIDR %q: want a /24 of %v", n.Name, node.Spec.PodCIDR, c.ClusterCIDR)
		}
		for other, q := range cidrs {
			if q == p {
				t.Fatalf("nodes %s and %s share podCIDR %v", other, n.Name, p)
			}
		}
		cidrs[n.Name] = p
	}
	for _, n := range c.Nodes {
		createServerPod(t, ctx, c, "pod-on-"+n.Name, n.Name, 0)
	}
	for _, n := range c.Nodes {
		pod := waitPodReady(t, ctx, c, "pod-on-"+n.Name)
		if pod.Spec.NodeName != n.Name {
			t.Errorf("pod %s placed on %q, want %s", pod.Name, pod.Spec.NodeName, n.Name)
		}
		ip, err := netip.ParseAddr(pod.Status.PodIP)
		if err != nil || !cidrs[n.Name].Contains(ip) {
			t.Errorf("pod %s IP %q: want one of %s's podCIDR %v", pod.Name, pod.Status.PodIP, n.Name, cidrs[n.Name])
		}
		out, err := c.Kubectl(ctx, "exec", pod.Name, "--", "ip", "-4", "-o", "addr", "show", "dev", "eth0")
		if err != nil && strings.Contains(err.Error(), "lookup "+n.Name) {
			t.Errorf("kubectl exec in %s: the API server dials the kubelet by node name: it needs "+
				"--kubelet-preferred-address-types=InternalIP (internal/lab): %v", pod.Name, err)
		} else if err != nil {
			t.Errorf("kubectl exec in %s: %v", pod.Name, err)
		} else if !strings.Contains(out, " "+pod.Status.PodIP+"/24 ") {
			t.Errorf("pod %s eth0 per kubectl exec:\n%s\nwant %s/24", pod.Name, out, pod.Status.PodIP)
		}
	}
	logMemory(t, c)
}

// checkConflistVersion fails t at once when the node's conflist has a
// cniVersion the libcni of Debian's containerd 1.6 cannot parse results
// of: every pod's sandbox would fail "unsupported CNI result version".
func checkConflistVersion(t *testing.T, n *Node) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(n.ConfDir, "10-"+NetworkName+".conflist"))
	if err != nil {
		t.Fatalf("conflist of %s: %v", n.Name, err)
	}
	var l struct {
		CNIVersion string `json:"cniVersion"`
	}
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatalf("conflist of %s: %v", n.Name, err)
	}
	switch l.CNIVersion {
	case "0.3.0", "0.3.1", "0.4.0", "1.0.0":
	default:
		t.Fatalf("conflist of %s has cniVersion %q: containerd 1.6 (Debian 12) handles up to 1.0.0", n.Name, l.CNIVersion)
	}
}

// logMemory logs the resident memory of each node, all its processes
// included, of the control plane, and their sum.
func logMemory(t *testing.T, c *Cluster) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat("/run/netns/"+c.Lab.Netns, &st); err != nil {
		t.Fatal(err)
	}
	// The control plane is every process in the lab netns.
	var cp int64
	ents, _ := os.ReadDir("/proc") // /proc is always readable
	for _, e := range ents {
		if l, err := os.Readlink("/proc/" + e.Name() + "/ns/net"); err == nil && l == fmt.Sprintf("net:[%d]", st.Ino) {
			pid, _ := strconv.Atoi(e.Name()) // a dir with a ns/net link is a pid
			cp += rssBytes(pid)
		}
	}
	total := cp
	for _, n := range c.Nodes {
		rss, err := n.MemoryRSS()
		if err != nil {
			t.Error(err)
			continue
		}
		total += rss
		t.Logf("node %s: %d MiB resident", n.Name, rss>>20)
	}
	t.Logf("control plane: %d MiB resident; cluster: %d MiB", cp>>20, total>>20)
}
