// Command floor-add is the least work a bridge CNI ADD can do, as a process:
// a veth with one end in the pod netns and the other on the bridge, one
// address and one default route in the pod. No IPAM, no rules, no result.
// make bench execs it beside nodebridge so nodebridge's ADD can be compared
// with the kernel work it cannot avoid. It makes its requests as nodebridge
// does, over pkg/rtnl's blocking sockets: through netlink's Handle the same
// six requests took about 0.7 ms more (paired runs), which a floor must not
// count.
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
	"runtime"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/nodebridge/nodebridge/pkg/rtnl"
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
	host, err := rtnl.Open()
	if err != nil {
		return err
	}
	defer host.Close()
	br, err := ensureBridge(host, r.bridge)
	if err != nil {
		return err
	}
	pod, err := os.Open(r.netns)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", r.netns, err)
	}
	defer pod.Close()
	if err := addVeth(host, r, br, int(pod.Fd())); err != nil {
		return err
	}
	return configurePod(r, int(pod.Fd()))
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
func ensureBridge(c *rtnl.Conn, name string) (netlink.Link, error) {
	br, err := c.LinkByName(name)
	if !errors.As(err, &netlink.LinkNotFoundError{}) {
		return br, err
	}
	la := netlink.NewLinkAttrs()
	la.Name = name
	la.Flags = net.FlagUp
	if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: la}); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("create bridge %s: %w", name, err)
	}
	return c.LinkByName(name)
}

// addVeth creates the pair with the pod end made directly in the pod netns.
//
// Equivalent to: ip link add HOST master BR up type veth peer name IFNAME netns POD
func addVeth(c *rtnl.Conn, r request, br netlink.Link, pod int) error {
	la := netlink.NewLinkAttrs()
	la.Name = r.hostName
	la.Flags = net.FlagUp
	if _, _, err := c.AddVeth(&netlink.Veth{LinkAttrs: la, PeerName: r.ifName}, br.Attrs().Index, pod); err != nil {
		return fmt.Errorf("create veth %s (peer %s in %s): %w", r.hostName, r.ifName, r.netns, err)
	}
	return nil
}

// configurePod puts the address and the default route on the pod end,
// through a socket this thread opens in the pod netns before going back.
//
// Equivalent to: ip -n POD addr add ADDR dev IFNAME; ip -n POD link set IFNAME up;
// ip -n POD route add default via GW dev IFNAME
func configurePod(r request, pod int) error {
	c, err := dialPod(pod)
	if err != nil {
		return fmt.Errorf("rtnetlink socket in %s: %w", r.netns, err)
	}
	defer c.Close()
	link, err := c.LinkByName(r.ifName)
	if err != nil {
		return fmt.Errorf("look up %s in %s: %w", r.ifName, r.netns, err)
	}
	if err := c.AddrAdd(link, r.addr); err != nil {
		return fmt.Errorf("add address %s to %s: %w", r.addr, r.ifName, err)
	}
	if err := c.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up: %w", r.ifName, err)
	}
	if err := c.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: r.gw}); err != nil {
		return fmt.Errorf("add default route via %s on %s: %w", r.gw, r.ifName, err)
	}
	return nil
}

// dialPod opens an rtnetlink socket in the netns pod from this thread,
// which enters it and comes back; a thread that cannot come back stays
// locked, and the process, which has nothing left to do, exits.
func dialPod(pod int) (*rtnl.Conn, error) {
	runtime.LockOSThread()
	self, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(self)
	if err := unix.Setns(pod, unix.CLONE_NEWNET); err != nil {
		return nil, err
	}
	c, err := rtnl.Open()
	if err := unix.Setns(self, unix.CLONE_NEWNET); err != nil {
		return nil, fmt.Errorf("return to the node's netns: %w", err)
	}
	runtime.UnlockOSThread()
	return c, err
}
