package kubelet

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"net/netip"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// agentRestartLosesNoPing pings from the first node's server pod to the
// second's every 0.2 s and restarts the first node's agent once replies
// flow: not one echo may go unanswered, and replies must keep coming after
// the new agent is ready.
func (e *e2e) agentRestartLosesNoPing(t *testing.T, ctx context.Context) {
	const count = 40 // 8 s at 0.2 s: room for the restart and replies after it
	on := e.c.Nodes[0]
	from, to := e.servers[on.Name], e.servers[e.c.Nodes[1].Name]
	p := startPing(t, ctx, e.c, from.Name, to.Status.PodIP, count)
	if _, ok := <-p.replies; !ok {
		t.Fatalf("ping from %s to %s: no reply before the restart:\n%s", from.Name, to.Status.PodIP, p.wait(t))
	}
	if err := e.c.RestartAgent(ctx, on); err != nil {
		t.Errorf("%v", err)
	}
	restarted := time.Now()
	after := 0
	for r := range p.replies {
		if r.After(restarted) {
			after++
		}
	}
	out := p.wait(t)
	sent, got, ok := pingCounts(out)
	if !ok || sent != count || got != sent {
		t.Errorf("ping from %s to %s across the agent restart on %s lost replies:\n%s", from.Name, to.Status.PodIP, on.Name, out)
	}
	if after < 3 {
		t.Errorf("only %d replies came after the restarted agent was ready: the ping did not span the restart", after)
	}
	t.Logf("agent of %s restarted; %d of %d replies, %d after it was ready", on.Name, got, sent, after)
}

// pingRun is a ping running in a pod through kubectl exec, its replies
// reported as they come.
type pingRun struct {
	cmd     *exec.Cmd
	replies chan time.Time // when each reply line came; closed at the end of the output
	out     chan string    // the whole output, once it ended
}

// startPing starts count pings every 0.2 s from pod to ip.
func startPing(t *testing.T, ctx context.Context, c *Cluster, pod, ip string, count int) *pingRun {
	t.Helper()
	cmd, err := c.KubectlCmd(ctx, "exec", pod, "--", "ping", "-c", strconv.Itoa(count), "-i", "0.2", "-W", "3", ip)
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout // one stream: kubectl's errors land in the output too
	if err := cmd.Start(); err != nil {
		t.Fatalf("start ping through kubectl exec: %v", err)
	}
	// Room for every reply and a duplicate each: the reader never blocks.
	p := &pingRun{cmd: cmd, replies: make(chan time.Time, 2*count), out: make(chan string, 1)}
	go func() {
		var all []string
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			all = append(all, sc.Text())
			if strings.Contains(sc.Text(), "bytes from") {
				p.replies <- time.Now()
			}
		}
		close(p.replies)
		p.out <- strings.Join(all, "\n")
	}()
	return p
}

// wait waits for the ping's end and returns its output; a kubectl or ping
// failure fails t.
func (p *pingRun) wait(t *testing.T) string {
	t.Helper()
	for range p.replies { // drained, so the reader finishes
	}
	out := <-p.out
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("ping through kubectl exec: %v\n%s", err, out)
	}
	return out
}

// pingCounts reads busybox ping's summary: "N packets transmitted, M
// packets received".
func pingCounts(out string) (sent, got int, ok bool) {
	m := regexp.MustCompile(`(\d+) packets transmitted, (\d+) packets received`).FindStringSubmatch(out)
	if m == nil {
		return 0, 0, false
	}
	sent, _ = strconv.Atoi(m[1]) // digits, by the pattern
	got, _ = strconv.Atoi(m[2])
	return sent, got, true
}

// kubeletRestartKeepsNetwork restarts the second node's kubelet and checks
// that its server pod keeps its sandbox (same container, no restart), its
// IP and its only allocation, and is reachable both ways before and after.
func (e *e2e) kubeletRestartKeepsNetwork(t *testing.T, ctx context.Context) {
	on, other := e.c.Nodes[1], e.c.Nodes[0]
	pod, peer := e.servers[on.Name], e.servers[other.Name]
	before, err := e.c.Client.CoreV1().Pods("default").Get(ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	allocs, err := on.Allocations()
	if err != nil {
		t.Fatal(err)
	}
	pingFrom(t, ctx, e.c, peer.Name, before.Status.PodIP)
	if err := on.RestartKubelet(ctx); err != nil {
		t.Fatal(err)
	}
	after := waitPodReady(t, ctx, e.c, pod.Name)
	if after.Status.PodIP != before.Status.PodIP {
		t.Errorf("pod %s IP %s after the kubelet restart, %s before", pod.Name, after.Status.PodIP, before.Status.PodIP)
	}
	if b, a := containerOf(before), containerOf(after); b.ContainerID != a.ContainerID || b.RestartCount != a.RestartCount {
		t.Errorf("pod %s container %s (%d restarts) after the kubelet restart, %s (%d) before: the pod was restarted",
			pod.Name, a.ContainerID, a.RestartCount, b.ContainerID, b.RestartCount)
	}
	pingFrom(t, ctx, e.c, peer.Name, after.Status.PodIP)
	// kubectl exec goes through the restarted kubelet, which serves it once
	// it has synced its pods again (the status above may still be the old
	// kubelet's).
	waitExec(t, ctx, e.c, pod.Name)
	pingFrom(t, ctx, e.c, pod.Name, peer.Status.PodIP)
	now, err := on.Allocations()
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(allocs, netip.Addr.Compare)
	slices.SortFunc(now, netip.Addr.Compare)
	if !slices.Equal(allocs, now) {
		t.Errorf("allocations of %s: %v after the kubelet restart, %v before", on.Name, now, allocs)
	}
}

// waitExec polls until kubectl exec into the pod runs a command.
func waitExec(t *testing.T, ctx context.Context, c *Cluster, pod string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := poll(ctx, 500*time.Millisecond, func() error {
		_, err := c.Kubectl(ctx, "exec", pod, "--", "true")
		return err
	}); err != nil {
		t.Fatalf("wait for kubectl exec into %s: %v", pod, err)
	}
}

// containerOf is the status of the pod's only container.
func containerOf(p *corev1.Pod) corev1.ContainerStatus {
	if len(p.Status.ContainerStatuses) == 0 {
		return corev1.ContainerStatus{}
	}
	return p.Status.ContainerStatuses[0]
}

// nodeDeletedRoutesGo takes the third node away (its kubelet stopped, so
// it cannot register again, then its Node deleted) and checks the other
// nodes' agents drop their routes to its podCIDR and keep those to each
// other, with their pods still reaching each other.
func (e *e2e) nodeDeletedRoutesGo(t *testing.T, ctx context.Context) {
	gone, a, b := e.c.Nodes[2], e.c.Nodes[0], e.c.Nodes[1]
	e.waitRoutes(t, ctx, a, map[netip.Prefix]netip.Addr{e.cidrs[b.Name]: b.IP, e.cidrs[gone.Name]: gone.IP})
	e.waitRoutes(t, ctx, b, map[netip.Prefix]netip.Addr{e.cidrs[a.Name]: a.IP, e.cidrs[gone.Name]: gone.IP})
	if err := gone.StopKubelet(); err != nil {
		t.Fatal(err)
	}
	if err := e.c.Client.CoreV1().Nodes().Delete(ctx, gone.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete node %s: %v", gone.Name, err)
	}
	e.waitRoutes(t, ctx, a, map[netip.Prefix]netip.Addr{e.cidrs[b.Name]: b.IP})
	e.waitRoutes(t, ctx, b, map[netip.Prefix]netip.Addr{e.cidrs[a.Name]: a.IP})
	pingFrom(t, ctx, e.c, e.servers[a.Name].Name, e.servers[b.Name].Status.PodIP)
}

// waitRoutes polls the node's proto 78 routes until they are exactly want.
func (e *e2e) waitRoutes(t *testing.T, ctx context.Context, n *Node, want map[netip.Prefix]netip.Addr) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := poll(ctx, 200*time.Millisecond, func() error {
		got, err := n.Routes(ctx)
		if err != nil {
			return err
		}
		if !maps.Equal(got, want) {
			return fmt.Errorf("routes of %s: %v, want %v", n.Name, got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("wait for the routes of %s: %v", n.Name, err)
	}
}
