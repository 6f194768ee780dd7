package kubelet

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodebridge/nodebridge/internal/lab"
)

// nodesReadyWithPodCIDRs checks that every node registered without a
// podCIDR got a distinct /24 of the cluster CIDR from the
// controller-manager and is Ready, and that the server pod the scheduler
// bound to it has an address of that /24 on its eth0.
func (e *e2e) nodesReadyWithPodCIDRs(t *testing.T, ctx context.Context) {
	e.cidrs = map[string]netip.Prefix{}
	owner := map[netip.Prefix]string{}
	for _, n := range e.c.Nodes {
		node, err := e.c.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !nodeReady(node) {
			t.Errorf("node %s not Ready: %v", n.Name, node.Status.Conditions)
		}
		p, err := netip.ParsePrefix(node.Spec.PodCIDR)
		if err != nil || p.Bits() != 24 || !e.c.ClusterCIDR.Contains(p.Addr()) {
			t.Fatalf("node %s podCIDR %q: want a /24 of %v", n.Name, node.Spec.PodCIDR, e.c.ClusterCIDR)
		}
		if other, ok := owner[p]; ok {
			t.Fatalf("nodes %s and %s share podCIDR %v", other, n.Name, p)
		}
		owner[p], e.cidrs[n.Name] = n.Name, p
	}
	for _, n := range e.c.Nodes {
		pod := e.servers[n.Name]
		if pod.Spec.NodeName != n.Name {
			t.Errorf("pod %s bound to %q, want %s", pod.Name, pod.Spec.NodeName, n.Name)
		}
		ip, err := netip.ParseAddr(pod.Status.PodIP)
		if err != nil || !e.cidrs[n.Name].Contains(ip) {
			t.Errorf("pod %s IP %q: want one of %s's podCIDR %v", pod.Name, pod.Status.PodIP, n.Name, e.cidrs[n.Name])
			continue
		}
		out, err := e.c.Kubectl(ctx, "exec", pod.Name, "--", "ip", "-4", "-o", "addr", "show", "dev", "eth0")
		if err != nil {
			t.Errorf("kubectl exec in %s: %v", pod.Name, err)
		} else if !strings.Contains(out, " "+ip.String()+"/24 ") {
			t.Errorf("pod %s eth0 per kubectl exec:\n%s\nwant %s/24", pod.Name, out, ip)
		}
	}
}

// nodeReady tells whether the Node's Ready condition is True.
func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podToPodWithoutNAT connects from each node's server pod to every other
// node's, through kubectl exec, and checks the server saw the client pod's
// own IP as the source: traffic between pods is routed, never masqueraded.
func (e *e2e) podToPodWithoutNAT(t *testing.T, ctx context.Context) {
	for _, from := range e.c.Nodes {
		for _, to := range e.c.Nodes {
			if from == to {
				continue
			}
			client, server := e.servers[from.Name], e.servers[to.Name]
			addr := net.JoinHostPort(server.Status.PodIP, fmt.Sprint(serverPort))
			got := sourceSeenBy(t, ctx, e.c, client.Name, addr, "/cgi-bin/ip")
			if got.String() != client.Status.PodIP {
				t.Errorf("pod %s (on %s) reached %s (on %s) from %v: want its own IP %s, not NATed",
					client.Name, from.Name, server.Name, to.Name, got, client.Status.PodIP)
			}
		}
	}
}

// podToOutsideMasqueraded connects from each node's server pod to a
// listener on the underlay host, outside the cluster, which must see the
// node's IP as the source: the pod's address is masqueraded on the way out.
func (e *e2e) podToOutsideMasqueraded(t *testing.T, ctx context.Context) {
	ln, err := lab.Listen(e.c.Lab.Netns, "tcp", net.JoinHostPort(lab.UnderlayV4.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintln(w, r.RemoteAddr)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() { _ = srv.Serve(ln) }() // ErrServerClosed after Close below
	t.Cleanup(func() { _ = srv.Close() })
	for _, n := range e.c.Nodes {
		pod := e.servers[n.Name]
		if got := sourceSeenBy(t, ctx, e.c, pod.Name, ln.Addr().String(), "/"); got != n.IP {
			t.Errorf("pod %s (%s) on %s reached the underlay host from %v: want the node IP %v",
				pod.Name, pod.Status.PodIP, n.Name, got, n.IP)
		}
	}
}

// hostPortFromAnotherNode runs a server pod with a hostPort on the first
// node and fetches from it on that node's IP from the second node's netns:
// portmap's DNAT brings the connection to the pod, with the source (the
// second node's IP) kept. Deleting the pod must free its address.
func (e *e2e) hostPortFromAnotherNode(t *testing.T, ctx context.Context) {
	const hostPort = 18080
	on, from := e.c.Nodes[0], e.c.Nodes[1]
	name := "hostport-" + on.Name
	createServerPod(t, ctx, e.c, name, on.Name, hostPort)
	pod := waitPodReady(t, ctx, e.c, name)
	url := fmt.Sprintf("http://%s/cgi-bin/ip", net.JoinHostPort(on.IP.String(), fmt.Sprint(hostPort)))
	var got netip.Addr
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := poll(pctx, 500*time.Millisecond, func() error {
		body, err := getIn(pctx, from.Netns, url)
		if err != nil {
			return err
		}
		got, err = parseRemoteAddr(body)
		return err
	})
	if err != nil {
		t.Fatalf("hostPort %d of pod %s on %s, from %s: %v", hostPort, name, on.Name, from.Name, err)
	}
	if got != from.IP {
		t.Errorf("pod %s saw the connection from %s to %s:%d come from %v, want %v", name, from.Name, on.IP, hostPort, got, from.IP)
	}
	deletePodAndWait(t, ctx, e.c, name)
	waitAllocationGone(t, ctx, on, netip.MustParseAddr(pod.Status.PodIP))
}

// getIn GETs url from inside netns and returns the body.
func getIn(ctx context.Context, netns, url string) (string, error) {
	client := &http.Client{Timeout: 3 * time.Second,
		Transport: &http.Transport{DialContext: lab.Dialer(netns), DisableKeepAlives: true}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return string(b), err
}

// waitAllocationGone polls the node's IPAM state until ip is no longer
// allocated: the pod's CNI DEL ran.
func waitAllocationGone(t *testing.T, ctx context.Context, n *Node, ip netip.Addr) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	err := poll(ctx, 200*time.Millisecond, func() error {
		ips, err := n.Allocations()
		if err != nil {
			return err
		}
		for _, a := range ips {
			if a == ip {
				return fmt.Errorf("%v still allocated on %s", ip, n.Name)
			}
		}
		return nil
	})
	if err != nil {
		t.Errorf("wait for the address of a deleted pod to be freed: %v", err)
	}
}
