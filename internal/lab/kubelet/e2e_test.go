package kubelet

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// e2e is the state the end-to-end steps share: one cluster of three nodes
// with nodebridge installed as the DaemonSet, and a server pod on each node.
type e2e struct {
	c       *Cluster
	update  Image                   // a second image, for a rolling update
	cidrs   map[string]netip.Prefix // node name → the podCIDR the controller-manager gave it
	servers map[string]*corev1.Pod  // node name → its server pod, Ready
}

// serverPort is where every server pod's httpd listens.
const serverPort = 8080

// TestE2E runs the end-to-end steps in order on one cluster: a cluster
// costs ~20 s to start, and the last steps (restarts, a Node deleted, the
// uninstall) change it for good. A failed step does not stop the later ones; the
// cluster's logs are printed once at the end when any failed.
func TestE2E(t *testing.T) { runE2E(t, 1) }

// TestE2ETwoSubnets runs the same steps with node-1 and node-3 in one
// underlay subnet and node-2 in another, the lab netns routing between
// them and knowing no pod route: the manifest's agents (--backend=auto)
// reach node-2 through VXLAN and route host-gw between the other two.
func TestE2ETwoSubnets(t *testing.T) { runE2E(t, 2) }

// runE2E runs the steps on three nodes spread over subnets underlay subnets.
func runE2E(t *testing.T, subnets int) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	t0 := time.Now()
	e := &e2e{servers: map[string]*corev1.Pod{}}
	e.c, e.update = startDaemonSetCluster(t, ctx, 3, subnets)
	for _, n := range e.c.Nodes {
		checkConflistVersion(t, n)
	}
	for _, n := range e.c.Nodes {
		createServerPod(t, ctx, e.c, "server-"+n.Name, n.Name, 0)
	}
	for _, n := range e.c.Nodes {
		e.servers[n.Name] = waitPodReady(t, ctx, e.c, "server-"+n.Name)
	}
	steps := []struct {
		name string
		run  func(*testing.T, context.Context)
	}{
		{"NodesReadyWithPodCIDRs", e.nodesReadyWithPodCIDRs},
		{"PodToPodAcrossNodesWithoutNAT", e.podToPodWithoutNAT},
		{"PodToOutsideMasqueraded", e.podToOutsideMasqueraded},
		{"HostPortFromAnotherNode", e.hostPortFromAnotherNode},
		{"Deployment30ThenZeroLeavesNothing", e.deploymentLeavesNothing},
		{"RollingUpdateLosesNoPing", e.rollingUpdateLosesNoPing},
		{"KubeletRestartKeepsPodNetwork", e.kubeletRestartKeepsNetwork},
		{"NodeDeletedRoutesGo", e.nodeDeletedRoutesGo},
		{"UninstallLeavesNodesAsBefore", e.uninstallLeavesNodesAsBefore},
	}
	for _, s := range steps {
		t0 := time.Now()
		t.Run(s.name, func(t *testing.T) { s.run(t, ctx) })
		t.Logf("step %s: %v", s.name, time.Since(t0).Round(time.Millisecond))
	}
	t.Logf("end-to-end suite: %v (cluster start included)", time.Since(t0).Round(time.Millisecond))
}

// serverScript makes a CGI script answering with the client's address as
// httpd saw it, then runs busybox httpd in the foreground: a peer that
// tells the source address of a connection, with nothing but busybox.
const serverScript = `mkdir -p /tmp/www/cgi-bin &&
printf '#!/bin/sh\necho Content-Type: text/plain\necho\necho "$REMOTE_ADDR"\n' >/tmp/www/cgi-bin/ip &&
chmod +x /tmp/www/cgi-bin/ip &&
exec httpd -f -p %d -h /tmp/www`

// createServerPod creates a pod on node (placed by the scheduler, by its
// hostname label) serving its peers' addresses on serverPort, Ready once
// the port accepts; with hostPort > 0 also on the node's own IP. The pod is
// deleted when t ends.
func createServerPod(t *testing.T, ctx context.Context, c *Cluster, name, node string, hostPort int32) {
	t.Helper()
	zero, no := int64(0), false
	ctr := corev1.Container{
		Name: "server", Image: BusyboxImage, ImagePullPolicy: corev1.PullNever,
		Command: []string{"sh", "-c", fmt.Sprintf(serverScript, serverPort)},
		Ports:   []corev1.ContainerPort{{ContainerPort: serverPort, HostPort: hostPort, Protocol: corev1.ProtocolTCP}},
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(serverPort)}},
			PeriodSeconds: 1,
		},
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			NodeSelector:                  map[string]string{"kubernetes.io/hostname": node},
			TerminationGracePeriodSeconds: &zero,
			AutomountServiceAccountToken:  &no,
			Containers:                    []corev1.Container{ctr},
		},
	}
	if _, err := c.Client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod %s: %v", name, err)
	}
	t.Cleanup(func() {
		// Best effort: gone already, or the nodes go down right after.
		_ = c.Client.CoreV1().Pods("default").Delete(context.Background(), name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	})
}

// waitPodReady polls the pod until it is Ready with an IP.
func waitPodReady(t *testing.T, ctx context.Context, c *Cluster, name string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	err := poll(ctx, 200*time.Millisecond, func() error {
		var err error
		if pod, err = c.Client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{}); err != nil {
			return err
		}
		if !PodReady(pod) || pod.Status.PodIP == "" {
			return fmt.Errorf("pod %s: phase %s, IP %q, conditions %v", name, pod.Status.Phase, pod.Status.PodIP, pod.Status.Conditions)
		}
		return nil
	})
	if err != nil {
		out, _ := c.Kubectl(ctx, "describe", "pod", name) // for the message only
		t.Fatalf("wait for pod %s ready: %v\n%s", name, err, out)
	}
	return pod
}

// deletePodAndWait deletes the pod and waits until the API server no longer
// has it, which the kubelet allows once its containers are gone.
func deletePodAndWait(t *testing.T, ctx context.Context, c *Cluster, name string) {
	t.Helper()
	zero := int64(0)
	pods := c.Client.CoreV1().Pods("default")
	if err := pods.Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatalf("delete pod %s: %v", name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	err := poll(ctx, 200*time.Millisecond, func() error {
		_, err := pods.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("pod %s still there (%v)", name, err)
	})
	if err != nil {
		t.Fatalf("wait for pod %s gone: %v", name, err)
	}
}

// sourceSeenBy sends an HTTP/1.0 GET of path to addr (ip:port) with nc
// inside pod (busybox's static wget crashes in a libc-less image) and
// returns the address the server answered with: its view of the source.
// It polls until it gets one.
func sourceSeenBy(t *testing.T, ctx context.Context, c *Cluster, pod, addr, path string) netip.Addr {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf(`printf 'GET %s HTTP/1.0\r\n\r\n' | nc -w 3 %s %s`, path, host, port)
	var ip netip.Addr
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = poll(ctx, 500*time.Millisecond, func() error {
		ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		out, err := c.Kubectl(ectx, "exec", pod, "--", "sh", "-c", script)
		if err != nil {
			return err
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if !strings.HasPrefix(out, "HTTP/1.") || !strings.Contains(lines[0], " 200 ") {
			return fmt.Errorf("GET %s%s from pod %s: %q", addr, path, pod, out)
		}
		ip, err = parseRemoteAddr(lines[len(lines)-1])
		return err
	})
	if err != nil {
		t.Fatalf("fetch %s%s from pod %s: %v", addr, path, pod, err)
	}
	return ip
}

// parseRemoteAddr reads an address as httpd's REMOTE_ADDR or Go's
// RemoteAddr writes it: "[::ffff:10.244.1.5]", "10.244.1.5:4321", or plain.
func parseRemoteAddr(s string) (netip.Addr, error) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), nil
	}
	ip, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("remote address %q: %w", s, err)
	}
	return ip.Unmap(), nil
}

// pingFrom pings ip three times from inside pod and fails t unless every
// reply came back.
func pingFrom(t *testing.T, ctx context.Context, c *Cluster, pod, ip string) {
	t.Helper()
	out, err := c.Kubectl(ctx, "exec", pod, "--", "ping", "-c", "3", "-i", "0.2", "-W", "2", ip)
	if err != nil {
		t.Errorf("ping %s from pod %s: %v", ip, pod, err)
	} else if !strings.Contains(out, " 0% packet loss") {
		t.Errorf("ping %s from pod %s:\n%s", ip, pod, out)
	}
}
