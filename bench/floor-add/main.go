// Command floor-add is the least work a bridge CNI ADD can do, as a process:
// a veth with one end in the pod netns and the other on the bridge, one
// address and one default route in the pod. No IPAM, no rules, no result.
// make bench execs it beside nodebridge so nodebridge's ADD can be compared
// with the kernel work it cannot avoid.
//
// It reads CNI_NETNS, CNI_IFNAME and CNI_CONTAINERID as a plugin does, and
// FLOOR_BRIDGE, FLOOR_ADDR (a CIDR) and FLOOR_GW in place of a config and
// an allocator. It ignores stdin.
package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// request is what one ADD needs, from the environment.
type request struct {
	bridge, netns, ifName, hostName string
	addr                            *netlink.Addr
	gw                              net.IP
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "floor-add:", err)
		os.Exit(1)
	}
}

func run() error {
	r, err := readRequest()
	if err != nil {
		return err
	}
	br, err := ensureBridge(r.bridge)
	if err != nil {
		return err
	}
	pod, err := netns.GetFromPath(r.netns)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", r.netns, err)
	}
	defer pod.Close()
	if err := addVeth(r, br, pod); err != nil {
		return err
	}
	return configurePod(r, pod)
}

func readRequest() (request, error) {
	id := os.Getenv("CNI_CONTAINERID")
	r := request{bridge: os.Getenv("FLOOR_BRIDGE"), netns: os.Getenv("CNI_NETNS"), ifName: os.Getenv("CNI_IFNAME")}
	if len(id) < 12 || r.bridge == "" || r.netns == "" || r.ifName == "" {
		return r, errors.New("need CNI_CONTAINERID (12+ chars), CNI_NETNS, CNI_IFNAME and FLOOR_BRIDGE")
	}
	r.hostName = "fl" + id[:12]
	addr, err := netlink.ParseAddr(os.Getenv("FLOOR_ADDR"))
	if err != nil {
		return r, fmt.Errorf("FLOOR_ADDR %q: %w", os.Getenv("FLOOR_ADDR"), err)
	}
	r.addr = addr
	if r.gw = net.ParseIP(os.Getenv("FLOOR_GW")); r.gw == nil {
		return r, fmt.Errorf("FLOOR_GW %q: not an IP", os.Getenv("FLOOR_GW"))
	}
	return r, nil
}

// ensureBridge returns the bridge, creating it up on the first call.
//
// Equivalent to: ip link add NAME up type bridge
func ensureBridge(name string) (netlink.Link, error) {
	br, err := netlink.LinkByName(name)
	if err == nil {
		return br, nil
	}
	var notFound netlink.LinkNotFoundError
	if !errors.As(err, &notFound) {
		return nil, fmt.Errorf("look up bridge %s: %w", name, err)
	}
	la := netlink.NewLinkAttrs()
	la.Name = name
	la.Flags = net.FlagUp
	if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: la}); err != nil && !errors.Is(err, syscall.EEXIST) {
		return nil, fmt.Errorf("create bridge %s: %w", name, err)
	}
	return netlink.LinkByName(name)
}

// addVeth creates the pair with the pod end made directly in the pod netns.
//
// Equivalent to: ip link add HOST master BR up type veth peer name IFNAME netns POD
func addVeth(r request, br netlink.Link, pod netns.NsHandle) error {
	la := netlink.NewLinkAttrs()
	la.Name = r.hostName
	la.MasterIndex = br.Attrs().Index
	la.Flags = net.FlagUp
	v := &netlink.Veth{LinkAttrs: la, PeerName: r.ifName, PeerNamespace: netlink.NsFd(pod)}
	if err := netlink.LinkAdd(v); err != nil {
		return fmt.Errorf("create veth %s (peer %s in %s): %w", r.hostName, r.ifName, r.netns, err)
	}
	return nil
}

// configurePod puts the address and the default route on the pod end.
//
// Equivalent to: ip -n POD addr add ADDR dev IFNAME; ip -n POD link set IFNAME up;
// ip -n POD route add default via GW dev IFNAME
func configurePod(r request, pod netns.NsHandle) error {
	h, err := netlink.NewHandleAt(pod)
	if err != nil {
		return fmt.Errorf("netlink handle in %s: %w", r.netns, err)
	}
	defer h.Close()
	link, err := h.LinkByName(r.ifName)
	if err != nil {
		return fmt.Errorf("look up %s in %s: %w", r.ifName, r.netns, err)
	}
	if err := h.AddrAdd(link, r.addr); err != nil {
		return fmt.Errorf("add address %s to %s: %w", r.addr, r.ifName, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up: %w", r.ifName, err)
	}
	route := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: r.gw}
	if err := h.RouteAdd(route); err != nil {
		return fmt.Errorf("add default route via %s on %s: %w", r.gw, r.ifName, err)
	}
	return nil
}
