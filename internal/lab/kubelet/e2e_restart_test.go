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

// rollingUpdateLosesNoPing pings from the first node's server pod to the
// second's every 0.2 s while the DaemonSet rolls out a new image tag, one
// node at a time, as an operator updates (kubectl apply of the manifest with
// the new tag): not one echo may go unanswered before the rollout is done,
// and then every node's agent runs the new version.
func (e *e2e) rollingUpdateLosesNoPing(t *testing.T, ctx context.Context) {
	const count = 400 // 80 s at 0.2 s: more than the rollout takes; the ping is cut when it is done
	from, to := e.servers[e.c.Nodes[0].Name], e.servers[e.c.Nodes[1].Name]
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	p := startPing(t, pctx, e.c, from.Name, to.Status.PodIP, count)
	if _, ok := <-p.replies; !ok {
		t.Fatalf("ping from %s to %s: no reply before the update:\n%s", from.Name, to.Status.PodIP, p.wait(t))
	}
	t0 := time.Now()
	if err := e.c.ApplyDaemonSet(ctx, e.update.Name); err != nil {
		t.Errorf("%v", err)
	}
	took := time.Since(t0)
	time.Sleep(time.Second) // a few replies after the last new agent is ready
	stop()
	for range p.replies { // drained, so the reader finishes
	}
	out := <-p.out
	_ = p.cmd.Wait() // killed: its status says so, and the output is what counts
	seqs := pingSeqs(out)
	if len(seqs) < int(took/(200*time.Millisecond)) {
		t.Errorf("%d replies over a %v rollout: the ping did not span it:\n%s", len(seqs), took, out)
	}
	for i, s := range seqs {
		if s != i {
			t.Errorf("ping from %s to %s across the rolling update: echo %d unanswered:\n%s", from.Name, to.Status.PodIP, i, out)
			break
		}
	}
	_, version, _ := strings.Cut(e.update.Name, ":")
	for _, n := range e.c.Nodes {
		code, body, err := n.Get(ctx, "/metrics")
		if err != nil || code != 200 || !strings.Contains(body, `,version="`+version+`"} 1`) {
			t.Errorf("agent of %s after the update: %v %d, want build_info of %s:\n%s", n.Name, err, code, version, body)
		}
	}
	t.Logf("rolling update to %s: %v, %d replies, none lost", e.update.Name, took.Round(time.Millisecond), len(seqs))
}

// pingSeqs are the sequence numbers of busybox ping's replies ("64 bytes
// from 10.244.1.5: seq=3 ttl=63 time=0.1 ms"), in order.
func pingSeqs(out string) []int {
	var seqs []int
	for _, m := range regexp.MustCompile(`bytes from .*: seq=(\d+) `).FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[1]) // digits, by the pattern
		seqs = append(seqs, n)
	}
	return seqs
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
	e.waitRoutes(t, ctx, a, map[netip.Prefix]netip.Addr{e.cidrs[b.Name]: e.via(a, b), e.cidrs[gone.Name]: e.via(a, gone)})
	e.waitRoutes(t, ctx, b, map[netip.Prefix]netip.Addr{e.cidrs[a.Name]: e.via(b, a), e.cidrs[gone.Name]: e.via(b, gone)})
	if err := gone.StopKubelet(); err != nil {
		t.Fatal(err)
	}
	if err := e.c.Client.CoreV1().Nodes().Delete(ctx, gone.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete node %s: %v", gone.Name, err)
	}
	e.waitRoutes(t, ctx, a, map[netip.Prefix]netip.Addr{e.cidrs[b.Name]: e.via(a, b)})
	e.waitRoutes(t, ctx, b, map[netip.Prefix]netip.Addr{e.cidrs[a.Name]: e.via(b, a)})
	pingFrom(t, ctx, e.c, e.servers[a.Name].Name, e.servers[b.Name].Status.PodIP)
}

// via is the gateway of from's route to to's podCIDR: to's address when
// both are in one subnet (host-gw), else the first address of the podCIDR,
// to's VTEP (VXLAN).
func (e *e2e) via(from, to *Node) netip.Addr {
	if from.Subnet == to.Subnet {
		return to.IP
	}
	return e.cidrs[to.Name].Addr()
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
