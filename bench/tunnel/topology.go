package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os/exec"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/nodebridge/nodebridge/internal/testenv"
	"github.com/nodebridge/nodebridge/pkg/routes"
)

// underlayMTU is the MTU of the link between the nodes.
const underlayMTU = 1500

// The address plan: two nodes on 198.18.0.0/24; on each, a pod routed
// host-gw (10.244.1.0/24 and 10.244.2.0/24) and one routed through VXLAN
// (10.244.3.0/24 and 10.244.4.0/24, whose first addresses are the VTEPs).
var (
	nodeIP  = [2]netip.Addr{netip.MustParseAddr("198.18.0.11"), netip.MustParseAddr("198.18.0.12")}
	hostGW  = [2]netip.Prefix{netip.MustParsePrefix("10.244.1.0/24"), netip.MustParsePrefix("10.244.2.0/24")}
	tunnels = [2]netip.Prefix{netip.MustParsePrefix("10.244.3.0/24"), netip.MustParsePrefix("10.244.4.0/24")}
)

// topology is the two nodes and their four pods, by netns name.
type topology struct {
	nodes [2]string
	gw    [2]string // the host-gw pods
	vx    [2]string // the VXLAN pods
	made  []string  // every netns made, for close
}

// path is what a sample measures: a client netns dialing a server netns.
type path struct {
	Name     string
	from, to string
	addr     netip.Addr
}

// paths lists the three paths, node to node first.
func (t *topology) paths() []path {
	return []path{
		{Name: "node to node", from: t.nodes[0], to: t.nodes[1], addr: nodeIP[1]},
		{Name: "pod to pod, host-gw", from: t.gw[0], to: t.gw[1], addr: podIP(hostGW[1])},
		{Name: "pod to pod, VXLAN", from: t.vx[0], to: t.vx[1], addr: podIP(tunnels[1])},
	}
}

// podIP is the pod's address in its node's prefix: .2, the node holding .1.
func podIP(p netip.Prefix) netip.Addr { return p.Addr().Next().Next() }

// newTopology makes the netns, links, addresses and routes; on error it
// removes what it made.
func newTopology(ctx context.Context) (_ *topology, err error) {
	t := &topology{}
	defer func() {
		if err != nil {
			err = errors.Join(err, t.close())
		}
	}()
	for i := range 2 {
		if t.nodes[i], err = t.netns(ctx, fmt.Sprintf("tun-node%d", i+1)); err != nil {
			return nil, err
		}
		if t.gw[i], err = t.netns(ctx, fmt.Sprintf("tun-gw%d", i+1)); err != nil {
			return nil, err
		}
		if t.vx[i], err = t.netns(ctx, fmt.Sprintf("tun-vx%d", i+1)); err != nil {
			return nil, err
		}
	}
	mtu := fmt.Sprint(underlayMTU)
	steps := [][]string{{"ip", "-n", t.nodes[0], "link", "add", "eth0", "mtu", mtu, "type", "veth", "peer", "name", "eth0", "netns", t.nodes[1], "mtu", mtu}}
	for i, n := range t.nodes {
		steps = append(steps,
			[]string{"ip", "-n", n, "addr", "add", nodeIP[i].String() + "/24", "dev", "eth0"},
			[]string{"ip", "-n", n, "link", "set", "eth0", "up"},
			[]string{"ip", "netns", "exec", n, "sysctl", "-qw", "net.ipv4.ip_forward=1"})
		steps = append(steps, podSteps(n, t.gw[i], "vgw", hostGW[i], underlayMTU)...)
		steps = append(steps, podSteps(n, t.vx[i], "vvx", tunnels[i], underlayMTU-routes.Overhead(false))...)
	}
	for _, argv := range steps {
		if err := runIP(ctx, argv...); err != nil {
			return nil, err
		}
	}
	for i := range 2 {
		if err := t.route(i); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// netns makes a netns named after this process, loopback up.
func (t *topology) netns(ctx context.Context, what string) (string, error) {
	name := testenv.NetnsPrefix() + what
	if err := runIP(ctx, "ip", "netns", "add", name); err != nil {
		return "", err
	}
	t.made = append(t.made, name)
	return name, runIP(ctx, "ip", "-n", name, "link", "set", "lo", "up")
}

// runIP runs argv, failing with its output.
func runIP(ctx context.Context, argv ...string) error {
	if out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, out)
	}
	return nil
}

// podSteps wires a pod netns to its node: a veth, the node side holding
// the prefix's .1, the pod .2 with a default route via .1, both sides at mtu.
func podSteps(node, pod, hostIf string, p netip.Prefix, mtu int) [][]string {
	gw, m := p.Addr().Next().String(), fmt.Sprint(mtu)
	return [][]string{
		{"ip", "-n", pod, "link", "add", "eth0", "mtu", m, "type", "veth", "peer", "name", hostIf, "netns", node, "mtu", m},
		{"ip", "-n", node, "addr", "add", gw + "/" + fmt.Sprint(p.Bits()), "dev", hostIf},
		{"ip", "-n", node, "link", "set", hostIf, "up"},
		{"ip", "-n", pod, "addr", "add", podIP(p).String() + "/" + fmt.Sprint(p.Bits()), "dev", "eth0"},
		{"ip", "-n", pod, "link", "set", "eth0", "up"},
		{"ip", "-n", pod, "route", "add", "default", "via", gw},
	}
}

// route gives node i what the agent would: a host-gw route to the other
// node's host-gw pod, and the VXLAN device with the other node as its
// peer and an onlink route to the other VXLAN pod, through pkg/routes.
func (t *topology) route(i int) error {
	ns, err := netns.GetFromName(t.nodes[i])
	if err != nil {
		return fmt.Errorf("open netns %s: %w", t.nodes[i], err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink handle in %s: %w", t.nodes[i], err)
	}
	defer h.Close()
	link, err := h.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("eth0 of %s: %w", t.nodes[i], err)
	}
	s := routes.NewSyncer(h, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	peer := 1 - i
	ul := &routes.Underlay{Addr: nodeIP[i], LinkIndex: link.Attrs().Index, LinkName: "eth0", MTU: underlayMTU}
	tun := &routes.Tunnel{Name: "nb.vxlan", VNI: 1, Port: 8472, Local: nodeIP[i], Underlay: ul, VTEP: tunnels[i].Addr(),
		Peers: []routes.Peer{{Node: "peer", VTEP: tunnels[peer].Addr(), MAC: routes.VTEPMAC(nodeIP[peer]), Remote: nodeIP[peer]}}}
	idx, _, err := s.SyncTunnel(tun)
	if err != nil {
		return fmt.Errorf("vxlan device of %s: %w", t.nodes[i], err)
	}
	want := map[netip.Prefix]routes.Route{
		hostGW[peer]:  {Dst: hostGW[peer], Gw: nodeIP[peer], LinkIndex: ul.LinkIndex, LinkName: "eth0"},
		tunnels[peer]: {Dst: tunnels[peer], Gw: tunnels[peer].Addr(), LinkIndex: idx, LinkName: "nb.vxlan", Onlink: true},
	}
	if _, _, err := s.Sync(want); err != nil {
		return fmt.Errorf("routes of %s: %w", t.nodes[i], err)
	}
	return nil
}

// close deletes every netns made, and with them their links.
func (t *topology) close() error {
	var errs []error
	for _, name := range t.made {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip netns del %s: %w: %s", name, err, out))
		}
	}
	t.made = nil
	return errors.Join(errs...)
}
