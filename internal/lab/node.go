package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// AgentMetricsAddr is where every lab agent serves /healthz, /readyz and
// /metrics: the node netns's own loopback (see Node.Get).
const AgentMetricsAddr = "127.0.0.1:9720"

// Node is a simulated node: a netns plugged into underlay subnet Subnet
// with the addresses 198.18.<Subnet>.<10+Index>/24 and
// fd00:198:18:<Subnet>::<10+Index>/64, FORWARD
// policy DROP in both families as on a hardened host, forwarding on, and
// its own CNI conf dir and IPAM data dir.
type Node struct {
	Name    string // the Node object's name
	Index   int
	Subnet  int // the underlay subnet, 0 or 1
	Netns   string
	ConfDir string // --cni-conf-dir of its agent
	DataDir string // --ipam-data-dir of its agent
	dir     string
	lab     *Lab
	agent   *Process
}

// NodeIPv4 and NodeIPv6 are the underlay addresses of node index i in
// subnet 0.
func NodeIPv4(i int) netip.Addr { return NodeIPv4In(i, 0) }

// NodeIPv6 is the IPv6 twin of NodeIPv4: fd00:198:18::1N for index N < 10.
func NodeIPv6(i int) netip.Addr { return NodeIPv6In(i, 0) }

// NodeIPv4In and NodeIPv6In are the underlay addresses of node index i in
// subnet s.
func NodeIPv4In(i, s int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, byte(s), byte(10 + i)}) }

// NodeIPv6In is the IPv6 twin of NodeIPv4In.
func NodeIPv6In(i, s int) netip.Addr {
	return netip.MustParseAddr(fmt.Sprintf("fd00:198:18:%d::%d", s, 10+i))
}

// AddNode makes node index i (1..89) named name in subnet 0: netns,
// uplink, addresses, default routes via the underlay host, forwarding,
// FORWARD policy DROP.
func (l *Lab) AddNode(ctx context.Context, name string, i int) (*Node, error) {
	return l.AddNodeIn(ctx, name, i, 0)
}

// AddNodeIn is AddNode in underlay subnet s: the lab routes between
// subnets, so its nodes are not on-link with those of the other.
func (l *Lab) AddNodeIn(ctx context.Context, name string, i, s int) (_ *Node, err error) {
	if i < 1 || i > 89 {
		return nil, fmt.Errorf("node index %d: want 1..89", i)
	}
	if s < 0 || s >= Subnets {
		return nil, fmt.Errorf("subnet %d: want 0..%d", s, Subnets-1)
	}
	n := &Node{Name: name, Index: i, Subnet: s, lab: l, dir: filepath.Join(l.Dir, "nodes", name)}
	n.ConfDir, n.DataDir = filepath.Join(n.dir, "net.d"), filepath.Join(n.dir, "networks")
	for _, d := range []string{n.ConfDir, n.DataDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("make dir of node %s: %w", name, err)
		}
	}
	if n.Netns, err = addNetns(ctx, l.Prefix+"node"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, n.Close())
		}
	}()
	if err := n.wire(ctx); err != nil {
		return nil, fmt.Errorf("wire node %s: %w", name, err)
	}
	return n, nil
}

// wire plugs the node into its underlay subnet and sets its host policy.
func (n *Node) wire(ctx context.Context) error {
	up := fmt.Sprintf("ul%d", n.Index) // the lab side of the node's uplink
	in := []string{"ip", "netns", "exec", n.Netns}
	steps := [][]string{
		{"ip", "-n", n.lab.Netns, "link", "add", up, "type", "veth", "peer", "name", "eth0", "netns", n.Netns},
		{"ip", "-n", n.lab.Netns, "link", "set", up, "master", bridgeOf(n.Subnet), "up"},
		{"ip", "-n", n.Netns, "link", "set", "eth0", "up"},
	}
	steps = append(steps, n.addressing()...)
	steps = append(steps,
		append(in, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"),
		append(in, "iptables", "-w", "-P", "FORWARD", "DROP"),
		append(in, "ip6tables", "-w", "-P", "FORWARD", "DROP"))
	for _, argv := range steps {
		if _, err := run(ctx, argv...); err != nil {
			return err
		}
	}
	return nil
}

// addressing is the commands giving eth0 the node's addresses in its
// subnet and default routes via the lab there.
func (n *Node) addressing() [][]string {
	return [][]string{
		{"ip", "-n", n.Netns, "addr", "add", n.IPv4().String() + "/24", "dev", "eth0"},
		{"ip", "-n", n.Netns, "addr", "add", n.IPv6().String() + "/64", "dev", "eth0", "nodad"},
		{"ip", "-n", n.Netns, "route", "replace", "default", "via", GatewayV4(n.Subnet).String()},
		{"ip", "-n", n.Netns, "-6", "route", "replace", "default", "via", GatewayV6(n.Subnet).String()},
	}
}

// IPv4 and IPv6 are the node's underlay addresses.
func (n *Node) IPv4() netip.Addr { return NodeIPv4In(n.Index, n.Subnet) }

// IPv6 is the IPv6 twin of IPv4.
func (n *Node) IPv6() netip.Addr { return NodeIPv6In(n.Index, n.Subnet) }

// MoveTo plugs the node into subnet s with that subnet's addresses, as a
// node re-racked or re-addressed by its cloud would be; its Node object's
// InternalIPs are the caller's to update.
func (n *Node) MoveTo(ctx context.Context, s int) error {
	if s < 0 || s >= Subnets {
		return fmt.Errorf("subnet %d: want 0..%d", s, Subnets-1)
	}
	up := fmt.Sprintf("ul%d", n.Index)
	steps := [][]string{
		{"ip", "-n", n.Netns, "addr", "flush", "dev", "eth0", "scope", "global"},
		{"ip", "-n", n.lab.Netns, "link", "set", up, "master", bridgeOf(s)},
	}
	n.Subnet = s
	for _, argv := range append(steps, n.addressing()...) {
		if _, err := run(ctx, argv...); err != nil {
			return fmt.Errorf("move node %s to subnet %d: %w", n.Name, s, err)
		}
	}
	return nil
}

// StartAgent runs nodebridge-agent in the node netns as this node, with
// the lab's agent kubeconfig, the node's dirs, and extra flags after those
// (a later flag wins). Its log is appended to agent.log in the node's dir.
func (n *Node) StartAgent(extra ...string) error {
	if n.agent != nil {
		if done, _ := n.agent.Exited(); !done {
			return fmt.Errorf("agent of %s already running", n.Name)
		}
	}
	kc, err := n.lab.AgentKubeconfig()
	if err != nil {
		return err
	}
	argv := append([]string{n.lab.AgentBin,
		"--kubeconfig=" + kc, "--node-name=" + n.Name,
		"--cni-conf-dir=" + n.ConfDir, "--ipam-data-dir=" + n.DataDir,
		"--metrics-addr=" + AgentMetricsAddr,
	}, extra...)
	// No NODE_NAME or KUBECONFIG from this process's environment: the
	// flags alone decide.
	n.agent, err = startProcess("agent "+n.Name, n.Netns, filepath.Join(n.dir, "agent.log"),
		[]string{"NODE_NAME=", "KUBECONFIG="}, argv...)
	return err
}

// Agent is the node's agent process, nil before StartAgent.
func (n *Node) Agent() *Process { return n.agent }

// StopAgent stops the agent with SIGTERM, as a DaemonSet update would.
func (n *Node) StopAgent() error {
	if n.agent == nil {
		return nil
	}
	return n.agent.Stop(10 * time.Second)
}

// KillAgent SIGKILLs the agent: a crash.
func (n *Node) KillAgent() {
	if n.agent != nil {
		n.agent.Kill()
	}
}

// AgentLogs is the agent's log so far, for a failure message.
func (n *Node) AgentLogs() string {
	if n.agent == nil {
		return "(agent never started)"
	}
	return n.agent.Logs()
}

// Get fetches path (e.g. "/readyz") from the agent's HTTP server, reached
// through the node netns's loopback.
func (n *Node) Get(ctx context.Context, path string) (int, string, error) {
	// One connection per call: a Transport per call must not leave idle
	// connections (and their goroutines) behind.
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DialContext: Dialer(n.Netns), DisableKeepAlives: true}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+AgentMetricsAddr+path, nil)
	if err != nil {
		return 0, "", fmt.Errorf("make request for %s: %w", path, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("get %s from agent of %s: %w", path, n.Name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, "", fmt.Errorf("read %s from agent of %s: %w", path, n.Name, err)
	}
	return resp.StatusCode, string(b), nil
}

// WaitReady polls the agent's /readyz every 100 ms until it answers 200;
// it fails early when the agent exits, and after timeout.
func (n *Node) WaitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		code, body, err := n.Get(ctx, "/readyz")
		if err == nil && code == 200 {
			return nil
		}
		if done, exitErr := n.Agent().Exited(); done {
			return fmt.Errorf("agent of %s exited (%v):\n%s", n.Name, exitErr, n.AgentLogs())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("agent of %s not ready (last: %d %q %v): %w", n.Name, code, strings.TrimSpace(body), err, ctx.Err())
		case <-tick.C:
		}
	}
}

// Exec runs argv inside the node netns and returns its combined output.
func (n *Node) Exec(ctx context.Context, argv ...string) (string, error) {
	return run(ctx, append([]string{"ip", "netns", "exec", n.Netns}, argv...)...)
}

// Close stops the agent and deletes the netns (its uplink with it) and the
// node's dir. The Node object, if any, is the caller's to delete.
func (n *Node) Close() error {
	err := n.StopAgent()
	if n.Netns != "" {
		err = errors.Join(err, delNetns(n.Netns))
	}
	if err2 := os.RemoveAll(n.dir); err2 != nil {
		err = errors.Join(err, fmt.Errorf("remove dir of node %s: %w", n.Name, err2))
	}
	return err
}
