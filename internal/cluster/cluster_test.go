package cluster

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

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodebridge/nodebridge/internal/netnstest"
)

// startCluster builds what a cluster needs and starts one with n nodes,
// closed when t ends; it logs how long the start took and the memory of
// each node.
func startCluster(t *testing.T, ctx context.Context, n int, withAgent bool) *Cluster {
	t.Helper()
	netnstest.RequireRoot(t)
	k8sBin, err := K8sBinaries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cniBin := filepath.Join(dir, "cni-bin")
	if err := os.Mkdir(cniBin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := BuildCNI(ctx, cniBin); err != nil {
		t.Fatal(err)
	}
	pause, image := filepath.Join(dir, "pause"), filepath.Join(dir, "image.tar")
	if err := BuildPause(ctx, pause); err != nil {
		t.Fatal(err)
	}
	if err := BuildImage(ctx, image, "/bin/busybox", pause); err != nil {
		t.Fatal(err)
	}
	var agent string
	if withAgent {
		if agent, err = BuildAgent(ctx, dir); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Now()
	c, err := Start(ctx, Options{Prefix: fmt.Sprintf("nb%x-", os.Getpid()), Dir: dir, K8sBin: k8sBin,
		CNIBinDir: cniBin, AgentBin: agent, Image: image, Nodes: n})
	if err != nil {
		t.Fatal(err)
	}
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

func TestNodesReadyWithPodCIDRsAndPodsOnEach(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := startCluster(t, ctx, 3, false)

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
		createPod(t, ctx, c, "pod-on-"+n.Name, n.Name)
	}
	for _, n := range c.Nodes {
		pod := waitPodRunning(t, ctx, c, "pod-on-"+n.Name)
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

func TestAgentConnectsPodsAcrossNodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := startCluster(t, ctx, 2, true)
	for _, n := range c.Nodes {
		checkConflistVersion(t, n)
	}
	ips := map[string]string{}
	for _, n := range c.Nodes {
		createPod(t, ctx, c, "pod-on-"+n.Name, n.Name)
	}
	for _, n := range c.Nodes {
		ips[n.Name] = waitPodRunning(t, ctx, c, "pod-on-"+n.Name).Status.PodIP
	}
	for _, from := range c.Nodes {
		for _, to := range c.Nodes {
			if from == to {
				continue
			}
			out, err := c.Kubectl(ctx, "exec", "pod-on-"+from.Name, "--", "ping", "-c", "2", "-W", "2", ips[to.Name])
			if err != nil {
				t.Errorf("ping from the pod on %s to the pod on %s (%s): %v", from.Name, to.Name, ips[to.Name], err)
			} else if !strings.Contains(out, " 0% packet loss") {
				t.Errorf("ping from the pod on %s to the pod on %s:\n%s", from.Name, to.Name, out)
			}
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

// createPod creates a busybox pod for the scheduler to place on node (by
// its hostname label), deleted when t ends.
func createPod(t *testing.T, ctx context.Context, c *Cluster, name, node string) {
	t.Helper()
	zero, no := int64(0), false
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			NodeSelector:                  map[string]string{"kubernetes.io/hostname": node},
			TerminationGracePeriodSeconds: &zero,
			AutomountServiceAccountToken:  &no,
			Containers: []corev1.Container{{
				Name: "main", Image: BusyboxImage, ImagePullPolicy: corev1.PullNever,
				Command: []string{"sleep", "3600"},
			}},
		},
	}
	if _, err := c.Client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod %s: %v", name, err)
	}
	t.Cleanup(func() {
		// Best effort: the nodes go down right after anyway.
		_ = c.Client.CoreV1().Pods("default").Delete(context.Background(), name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	})
}

// waitPodRunning polls the pod until it runs with an IP.
func waitPodRunning(t *testing.T, ctx context.Context, c *Cluster, name string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	err := poll(ctx, 200*time.Millisecond, func() error {
		var err error
		if pod, err = c.Client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{}); err != nil {
			return err
		}
		if pod.Status.Phase != corev1.PodRunning || pod.Status.PodIP == "" {
			return fmt.Errorf("pod %s: phase %s, IP %q, conditions %v", name, pod.Status.Phase, pod.Status.PodIP, pod.Status.Conditions)
		}
		return nil
	})
	if err != nil {
		out, _ := c.Kubectl(ctx, "describe", "pod", name) // for the message only
		t.Fatalf("wait for pod %s: %v\n%s", name, err, out)
	}
	return pod
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
