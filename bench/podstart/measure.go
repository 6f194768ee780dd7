package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/nodebridge/nodebridge/internal/lab/kubelet"
)

// roundSpec is one round of a network.
type roundSpec struct {
	round   int
	pods    int
	timeout time.Duration
	ping    bool // check, once, that pods on two nodes reach each other
}

// readyPod is a pod the watch saw Ready, and when.
type readyPod struct {
	name, node, ip string
	at             time.Time
}

// runRound creates the round's pods at once, each pinned by a nodeSelector
// to node i mod nodes and placed by the scheduler, times each from just
// before its create request to the watch event that shows it Ready, then
// deletes them all and waits until the kubelets have torn them down.
func runRound(ctx context.Context, c *kubelet.Cluster, s roundSpec) (roundResult, error) {
	rr := roundResult{Round: s.round}
	pods := c.Client.CoreV1().Pods("default")
	sel := fmt.Sprintf("podstart-round=%d", s.round)
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	w, err := pods.Watch(rctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return rr, fmt.Errorf("watch pods %s: %w", sel, err)
	}
	defer w.Stop()
	created := make([]time.Time, s.pods)
	createDone := make(chan error, 1) // the one send never blocks
	var creates sync.WaitGroup
	creates.Go(func() { createDone <- createPods(rctx, pods, s, len(c.Nodes), created) })
	ready, err := waitReady(rctx, w, s.pods, createDone)
	if err == nil {
		rr.fill(created, ready, s.round)
		if s.ping {
			err = pingAcross(rctx, c, ready)
		}
	}
	cancel()
	creates.Wait() // no create after the delete
	if ctx.Err() != nil {
		return rr, err // interrupted: the cluster goes, and its pods with it
	}
	// Delete even after a failure: the next round needs the nodes idle.
	t0 := time.Now()
	if derr := deleteAll(ctx, pods, sel); derr != nil {
		return rr, errors.Join(err, derr)
	}
	rr.GoneMs = ms(time.Since(t0))
	return rr, err
}

// createPods creates the pods one after another, as fast as the API server
// takes them, stamping each just before its request.
func createPods(ctx context.Context, pods typedcorev1.PodInterface, s roundSpec, nodes int, created []time.Time) error {
	for i := range s.pods {
		p := benchPod(s.round, i, kubelet.NodeName(i%nodes+1))
		created[i] = time.Now()
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create pod %s: %w", p.Name, err)
		}
	}
	return nil
}

// waitReady collects the first Ready of each of n pods from the watch, and
// the end of the creates.
func waitReady(ctx context.Context, w watch.Interface, n int, createDone <-chan error) (map[string]readyPod, error) {
	ready := map[string]readyPod{}
	for created := false; !created || len(ready) < n; {
		select {
		case err := <-createDone:
			if err != nil {
				return nil, err
			}
			created = true
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil, fmt.Errorf("watch ended with %d of %d pods Ready", len(ready), n)
			}
			at := time.Now()
			p, isPod := ev.Object.(*corev1.Pod)
			if ev.Type == watch.Error || !isPod {
				return nil, fmt.Errorf("watch: %s event: %v", ev.Type, ev.Object)
			}
			if _, seen := ready[p.Name]; !seen && kubelet.PodReady(p) {
				ready[p.Name] = readyPod{name: p.Name, node: p.Spec.NodeName, ip: p.Status.PodIP, at: at}
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for %d pods Ready, %d are: %w", n, len(ready), ctx.Err())
		}
	}
	return ready, nil
}

// benchPod is pod i of a round: busybox sleeping, from the local image, no
// service-account token (nothing of the pod's start but the network
// differs between the clusters), on node.
func benchPod(round, i int, node string) *corev1.Pod {
	zero, no := int64(0), false
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: podName(round, i),
			Labels: map[string]string{"podstart-round": fmt.Sprint(round)}},
		Spec: corev1.PodSpec{
			NodeSelector:                  map[string]string{"kubernetes.io/hostname": node},
			TerminationGracePeriodSeconds: &zero,
			AutomountServiceAccountToken:  &no,
			Containers: []corev1.Container{{
				Name: "main", Image: kubelet.BusyboxImage, ImagePullPolicy: corev1.PullNever,
				Command: []string{"sleep", "3600"},
			}},
		},
	}
}

// podName is the name of pod i of a round.
func podName(round, i int) string { return fmt.Sprintf("ps-%d-%02d", round, i) }

// deleteAll deletes the round's pods gracefully, so each Pod object stays
// until its kubelet has stopped its sandbox (CNI DEL included), and waits
// until none is left.
func deleteAll(ctx context.Context, pods typedcorev1.PodInterface, sel string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	grace := int64(1)
	err := pods.DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &grace}, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return fmt.Errorf("delete pods %s: %w", sel, err)
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		l, err := pods.List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err == nil && len(l.Items) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for pods %s to go: %w (list: %v)", sel, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// pingAcross pings, through kubectl exec, from a pod on one node to a pod
// on another: a network that starts pods fast but does not connect them
// would make the comparison moot.
func pingAcross(ctx context.Context, c *kubelet.Cluster, ready map[string]readyPod) error {
	var from, to *readyPod
	for _, p := range ready {
		switch {
		case from == nil:
			from = &p
		case to == nil && p.node != from.node:
			to = &p
		}
	}
	if to == nil {
		return nil // one node: nothing across
	}
	out, err := c.Kubectl(ctx, "exec", from.name, "--", "ping", "-c", "2", "-W", "2", to.ip)
	if err != nil || !strings.Contains(out, " 0% packet loss") {
		return fmt.Errorf("ping from %s (%s) to %s (%s, %s): %v\n%s", from.name, from.node, to.name, to.node, to.ip, err, out)
	}
	return nil
}
