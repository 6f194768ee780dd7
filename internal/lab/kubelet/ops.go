package kubelet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/nodebridge/nodebridge/internal/lab"
)

// The operations below are what an operator or an upgrade does to a
// running node, and the looks into a node that tell whether a pod left
// something behind. The end-to-end tests use them; so can the demo.

// kubeletHealthz is where the node's kubelet answers /healthz (see
// kubeletConfig): the node netns's own loopback.
const kubeletHealthz = "http://127.0.0.1:10248/healthz"

// StopKubelet stops the node's kubelet with SIGTERM, as a node being
// drained away or a systemctl stop would. Containerd and the pods keep
// running.
func (n *Node) StopKubelet() error {
	if n.kubelet == nil {
		return nil
	}
	if err := n.kubelet.alive(); err != nil {
		return err
	}
	err := n.kubelet.stop(10 * time.Second)
	n.kubelet = nil // stopped on purpose: Close must not report it as a crash
	return err
}

// RestartKubelet stops the node's kubelet and starts it again with the
// same flags, as a kubelet upgrade does, and waits until it answers
// /healthz. Containerd, and with it every pod, keeps running.
func (n *Node) RestartKubelet(ctx context.Context) error {
	if n.kubelet == nil {
		return fmt.Errorf("restart kubelet of %s: not running", n.Name)
	}
	old := n.kubelet
	if err := n.StopKubelet(); err != nil {
		return fmt.Errorf("restart kubelet of %s: %w", n.Name, err)
	}
	var err error
	if n.kubelet, err = startProc(old.Name, old.LogFile, old.Args()...); err != nil {
		return fmt.Errorf("restart kubelet of %s: %w", n.Name, err)
	}
	err = poll(ctx, 100*time.Millisecond, func() error {
		if err := n.kubelet.alive(); err != nil {
			return permanent(err)
		}
		return n.kubeletHealthy(ctx)
	})
	if err != nil {
		return fmt.Errorf("wait for restarted kubelet of %s: %w", n.Name, err)
	}
	return nil
}

// kubeletHealthy asks the kubelet's /healthz through the node netns.
func (n *Node) kubeletHealthy(ctx context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second,
		Transport: &http.Transport{DialContext: lab.Dialer(n.Netns), DisableKeepAlives: true}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, kubeletHealthz, nil)
	if err != nil {
		return fmt.Errorf("make kubelet healthz request: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("get kubelet healthz of %s: %w", n.Name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096)) // only for the message
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("kubelet healthz of %s: %s: %s", n.Name, resp.Status, b)
	}
	return nil
}

// KubectlCmd is the command Kubectl runs, not started, for output that
// must be read while it runs (a long ping through kubectl exec).
func (c *Cluster) KubectlCmd(ctx context.Context, args ...string) (*exec.Cmd, error) {
	kc, err := c.Lab.AdminKubeconfig()
	if err != nil {
		return nil, err
	}
	argv := append([]string{"netns", "exec", c.Lab.Netns, filepath.Join(c.K8sBin, "kubectl"), "--kubeconfig=" + kc}, args...)
	return exec.CommandContext(ctx, "ip", argv...), nil
}

// Routes are the node's routes to other nodes' pods, the ones the agent
// installs (proto 78), as destination to gateway.
// Equivalent to: ip -4 route show proto 78
func (n *Node) Routes(ctx context.Context) (map[netip.Prefix]netip.Addr, error) {
	out, err := n.Exec(ctx, "ip", "-4", "route", "show", "proto", "78")
	if err != nil {
		return nil, fmt.Errorf("list routes of %s: %w", n.Name, err)
	}
	routes, err := parseRoutes(out)
	if err != nil {
		return nil, fmt.Errorf("list routes of %s: %w", n.Name, err)
	}
	return routes, nil
}

// parseRoutes reads "DST via GW ..." lines of ip route show, skipping
// routes without a gateway.
func parseRoutes(out string) (map[netip.Prefix]netip.Addr, error) {
	routes := map[netip.Prefix]netip.Addr{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 3 || f[1] != "via" {
			continue // none, or not a route through another node
		}
		dst, err1 := netip.ParsePrefix(f[0])
		via, err2 := netip.ParseAddr(f[2])
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("route %q: %w", l, err)
		}
		routes[dst] = via
	}
	return routes, nil
}

// Allocations are the addresses host-local state in the node's IPAM data
// dir holds for the cluster's network: one file per allocated address.
func (n *Node) Allocations() ([]netip.Addr, error) {
	dir := filepath.Join(n.DataDir, NetworkName)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // no pod yet
	}
	if err != nil {
		return nil, fmt.Errorf("list allocations of %s: %w", n.Name, err)
	}
	var ips []netip.Addr
	for _, e := range ents {
		if ip, err := netip.ParseAddr(e.Name()); err == nil {
			ips = append(ips, ip) // the rest is last_reserved_ip.N and the lock
		}
	}
	return ips, nil
}

// Veths are the host ends of the pod veths in the node netns: the links
// whose names start with "nb", as the plugin names them.
// Equivalent to: ip -o link show type veth
func (n *Node) Veths(ctx context.Context) ([]string, error) {
	out, err := n.Exec(ctx, "ip", "-o", "link", "show", "type", "veth")
	if err != nil {
		return nil, fmt.Errorf("list veths of %s: %w", n.Name, err)
	}
	return parseVeths(out), nil
}

// parseVeths picks the names starting with "nb" out of ip -o link show.
func parseVeths(out string) []string {
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		if strings.HasPrefix(name, "nb") {
			names = append(names, name)
		}
	}
	return names
}

// Rules lists the node netns's packet-filter state, one line per rule,
// chain or set element, without counters: "iptables TABLE: LINE" and
// "ip6tables TABLE: LINE" from iptables-save, and "nft TABLE CHAIN: LINE"
// (or "nft TABLE set NAME: LINE") from nft, so that a caller can tell whose
// a line is by its table and chain.
func (n *Node) Rules(ctx context.Context) ([]string, error) {
	var lines []string
	for _, save := range []string{"iptables-save", "ip6tables-save"} {
		out, err := n.Exec(ctx, save)
		if err != nil {
			return nil, fmt.Errorf("list rules of %s: %w", n.Name, err)
		}
		lines = append(lines, saveLines(strings.TrimSuffix(save, "-save"), out)...)
	}
	out, err := n.Exec(ctx, "nft", "-s", "list", "ruleset")
	if err != nil {
		return nil, fmt.Errorf("list nft ruleset of %s: %w", n.Name, err)
	}
	return append(lines, nftLines(out)...), nil
}

// saveLines prefixes each line of iptables-save output with tool and
// table, dropping comments, COMMIT and counters.
func saveLines(tool, out string) []string {
	counters := regexp.MustCompile(`\[\d+:\d+\]`)
	var lines []string
	table := ""
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(counters.ReplaceAllString(l, ""))
		switch {
		case l == "" || strings.HasPrefix(l, "#") || l == "COMMIT":
		case strings.HasPrefix(l, "*"):
			table = l[1:]
		default:
			lines = append(lines, tool+" "+table+": "+l)
		}
	}
	return lines
}

// nftLines prefixes each line of nft's ruleset with its table and chain
// (or set) name, dropping braces and comments.
func nftLines(out string) []string {
	var lines []string
	table, inner := "", ""
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		f := strings.Fields(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "}") && inner != "":
			inner = ""
		case strings.HasPrefix(l, "}"): // nft may append its warnings to the last brace
			table = ""
		case len(f) >= 3 && f[0] == "table":
			table = f[1] + " " + f[2]
		case len(f) >= 2 && (f[0] == "chain" || f[0] == "set" || f[0] == "map"):
			inner = f[0] + " " + f[1]
		default:
			lines = append(lines, "nft "+table+" "+inner+": "+l)
		}
	}
	return lines
}

// PodReady tells whether the pod's Ready condition is True.
func PodReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
