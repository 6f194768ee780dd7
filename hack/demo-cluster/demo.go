package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodebridge/nodebridge/internal/lab/kubelet"
)

// demo is what run made and how long each step took.
type demo struct {
	t0    time.Time
	dir   string
	c     *kubelet.Cluster // nil until started
	pods  []*corev1.Pod    // Ready, one per node
	times []stepTime
}

// stepTime is one step's name, duration and outcome.
type stepTime struct {
	name string
	took time.Duration
	err  error
}

// step prints the step's name, runs f, and records how long it took.
func (d *demo) step(name string, f func() error) error {
	fmt.Printf("\n== %s\n", name)
	t0 := time.Now()
	err := f()
	d.times = append(d.times, stepTime{name, time.Since(t0), err})
	fmt.Printf("-- %s: %v\n", name, time.Since(t0).Round(time.Millisecond))
	return err
}

// printTimes prints the table of steps.
func (d *demo) printTimes() {
	fmt.Println("\n== time per step")
	for _, s := range d.times {
		outcome := "ok"
		if s.err != nil {
			outcome = "FAILED"
		}
		fmt.Printf("%-14s %10v  %s\n", s.name, s.took.Round(time.Millisecond), outcome)
	}
	fmt.Printf("%-14s %10v\n", "total", time.Since(d.t0).Round(time.Millisecond))
}

// close stops the cluster (every process, mount and netns it made goes)
// and removes the temp dir, past failures.
func (d *demo) close() error {
	var err error
	if d.c != nil {
		err = d.c.Close()
	}
	if rmErr := os.RemoveAll(d.dir); rmErr != nil {
		err = errors.Join(err, fmt.Errorf("remove %s: %w", d.dir, rmErr))
	}
	if err == nil {
		fmt.Println("every process, netns, mount and file of the demo is gone")
	}
	return err
}

// demoLabel marks the demo's pods; their anti-affinity on it makes the
// scheduler put each on another node.
const demoLabel = "nodebridge-demo"

// createPods creates one busybox pod per node, leaving the placement to
// the scheduler, and waits until each is Ready.
func (d *demo) createPods(ctx context.Context) error {
	pods := d.c.Client.CoreV1().Pods("default")
	for i := range d.c.Nodes {
		p, err := pods.Create(ctx, demoPod(fmt.Sprintf("demo-%d", i+1)), metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create pod demo-%d: %w", i+1, err)
		}
		fmt.Printf("created pod %s\n", p.Name)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		l, err := pods.List(ctx, metav1.ListOptions{LabelSelector: "app=" + demoLabel})
		if err == nil && allReady(l.Items, len(d.c.Nodes)) {
			for i := range l.Items {
				d.pods = append(d.pods, &l.Items[i])
			}
			return nil
		}
		select {
		case <-ctx.Done():
			out, _ := d.c.Kubectl(context.Background(), "describe", "pods", "-l", "app="+demoLabel) // for the message only
			return fmt.Errorf("wait for the demo pods to be Ready: %w (list: %v)\n%s", ctx.Err(), err, out)
		case <-tick.C:
		}
	}
}

// allReady tells whether pods are want pods, each Ready with an IP.
func allReady(pods []corev1.Pod, want int) bool {
	if len(pods) != want {
		return false
	}
	for _, p := range pods {
		if p.Status.PodIP == "" || !kubelet.PodReady(&p) {
			return false
		}
	}
	return true
}

// demoPod is a busybox pod that sleeps, from the local image, never on a
// node that already runs a demo pod.
func demoPod(name string) *corev1.Pod {
	zero, no := int64(0), false
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": demoLabel}},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &zero,
			AutomountServiceAccountToken:  &no,
			Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
					LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": demoLabel}},
					TopologyKey:   "kubernetes.io/hostname",
				}},
			}},
			Containers: []corev1.Container{{
				Name: "main", Image: kubelet.BusyboxImage, ImagePullPolicy: corev1.PullNever,
				Command: []string{"sleep", "86400"},
			}},
		},
	}
}

// printKubectl prints what kubectl, run in the lab netns, shows of the
// cluster.
func (d *demo) printKubectl(ctx context.Context) error {
	out, err := d.c.Kubectl(ctx, "get", "nodes,pods", "-o", "wide")
	fmt.Print(out)
	if err != nil {
		return err
	}
	out, err = d.c.Kubectl(ctx, "-n", "kube-system", "get", "daemonset,pods", "-o", "wide")
	fmt.Print(out)
	return err
}

// printRoutes prints each node's routes of protocol 78, the agent's: one
// per other node's podCIDR, via that node.
func (d *demo) printRoutes(ctx context.Context) error {
	for _, n := range d.c.Nodes {
		out, err := n.Exec(ctx, "ip", "route", "show", "proto", "78")
		if err != nil {
			return fmt.Errorf("routes of %s: %w", n.Name, err)
		}
		fmt.Printf("%s (%s), ip route show proto 78:\n%s", n.Name, n.IP, indent(out))
		if got := strings.Count(strings.TrimSpace(out), "\n") + 1; strings.TrimSpace(out) == "" || got != len(d.c.Nodes)-1 {
			return fmt.Errorf("node %s has %d agent routes, want %d", n.Name, got, len(d.c.Nodes)-1)
		}
	}
	return nil
}

// pingAcross pings, through kubectl exec, from every demo pod to every
// other, and fails on any loss.
func (d *demo) pingAcross(ctx context.Context) error {
	var errs []error
	for _, from := range d.pods {
		for _, to := range d.pods {
			if from == to {
				continue
			}
			out, err := d.c.Kubectl(ctx, "exec", from.Name, "--", "ping", "-c", "2", "-W", "2", to.Status.PodIP)
			verdict := summary(out)
			if err != nil || !strings.Contains(out, " 0% packet loss") {
				verdict = "FAILED: " + strings.TrimSpace(out)
				errs = append(errs, fmt.Errorf("ping from %s to %s (%s): %v", from.Name, to.Name, to.Status.PodIP, err))
			}
			fmt.Printf("%s (%s, %s) -> %s (%s, %s): %s\n", from.Name, from.Spec.NodeName, from.Status.PodIP,
				to.Name, to.Spec.NodeName, to.Status.PodIP, verdict)
		}
	}
	return errors.Join(errs...)
}

// summary is ping's statistics lines, joined.
func summary(out string) string {
	var keep []string
	for l := range strings.Lines(out) {
		if strings.Contains(l, "packet loss") || strings.HasPrefix(l, "round-trip") {
			keep = append(keep, strings.TrimSpace(l))
		}
	}
	return strings.Join(keep, "; ")
}

// indent prefixes each line of s with two spaces.
func indent(s string) string {
	var sb strings.Builder
	for l := range strings.Lines(s) {
		sb.WriteString("  " + l)
	}
	return sb.String()
}
