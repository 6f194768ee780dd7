package bridge

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"syscall"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/nodebridge/nodebridge/pkg/rtnl"
)

// configureContainer sets up the container end inside the pod netns,
// through pod's socket there: addresses, link up (unless
// disableContainerInterface), routes, the end of duplicate address
// detection when it runs, an ARP announcement of the pod's IPv4 address
// when its MAC was chosen by the config (see pickPodMAC), then the
// gateways' neighbour entries at gwMAC (see seedGateways). Only the IPv6
// sysctls and DAD need a thread inside the pod netns (podNS).
func configureContainer(ctx context.Context, c *Config, pod *podConn, podNS *podNetns, ifName string, res *current.Result, gwMAC net.HardwareAddr, macChosen bool) error {
	h, err := pod.handle()
	if err != nil {
		return err
	}
	link, err := h.LinkByName(ifName)
	if err != nil {
		return fmt.Errorf("look up %s in %s: %w", ifName, podNS.path, err)
	}
	if c.DisableContainerInterface {
		return nil // left down for whatever takes the interface over; Validate rules out IPAM
	}
	dad := c.dad()
	if hasIPv6(res.IPs) {
		if err := podNS.do(func() error { return setDADSysctls(ifName, dad) }); err != nil {
			return err
		}
	}
	if err := addAddresses(h, link, res.IPs, dad); err != nil {
		return err
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up in %s: %w", ifName, podNS.path, err)
	}
	if err := addRoutes(h, link, res); err != nil {
		return err
	}
	if dad {
		if err := podNS.do(func() error { return waitDAD(ctx, link, res.IPs) }); err != nil {
			return err
		}
	}
	if macChosen {
		if err := announce(h, link, res.IPs); err != nil {
			return err
		}
	}
	return seedGateways(h, link, res.IPs, gwMAC) // after the announce, which an entry already there would hold back
}

// dad reports whether the pod's IPv6 addresses go through duplicate address
// detection: only when enabledad asks, and never with hairpinMode, which
// sends the pod's own probes back to it so DAD would call every address a
// duplicate (kubernetes/kubernetes#32291), nor with promiscMode, kubenet's
// stand-in for hairpin.
func (c *Config) dad() bool {
	return c.EnableDad && !c.HairpinMode && !c.PromiscMode
}

// announce has the kernel resolve the IPv4 gateway at once: its ARP request,
// broadcast from the pod's address and MAC, updates every neighbour that
// holds an entry for a reused address, as a gratuitous ARP does, and warms
// the pod's entry for its gateway. ADD sends it only for a MAC the config
// chose: a MAC made from the address is already right everywhere. It may be lost if the new bridge port is
// not forwarding yet, which the seeded entries (neigh.go) make harmless.
// (Sending a gratuitous ARP ourselves needs an AF_PACKET socket, whose
// close waits out an RCU grace period: ~10 ms of every ADD; the kernel's own
// arp_notify fires before the port forwards.)
//
// Equivalent to: arping -c1 -I IFNAME GATEWAY
func announce(h *rtnl.Conn, link netlink.Link, ips []*current.IPConfig) error {
	gw := familyGateway(ips, true)
	if gw == nil {
		return nil
	}
	n := &netlink.Neigh{LinkIndex: link.Attrs().Index, Family: netlink.FAMILY_V4, IP: gw, Flags: netlink.NTF_USE}
	if err := h.NeighSet(n); err != nil {
		return fmt.Errorf("announce %s on %s (resolve gateway %s): %w", ips[0].Address.IP, link.Attrs().Name, gw, err)
	}
	return nil
}

// addAddresses puts the pod's addresses on its interface. Without dad, IPv6
// addresses skip duplicate address detection (the sysctls, set before,
// do the same for the link-local address the kernel adds, as the
// reference sets): the allocator already guarantees uniqueness, and DAD
// delays the first packets. With dad, detection is on as the reference
// turns it on.
//
// Equivalent to: ip addr add ADDR dev IFNAME nodad
func addAddresses(h *rtnl.Conn, link netlink.Link, ips []*current.IPConfig, dad bool) error {
	for _, ip := range ips {
		addr := &netlink.Addr{IPNet: &ip.Address}
		if ip.Address.IP.To4() == nil && !dad {
			addr.Flags = syscall.IFA_F_NODAD
		}
		if err := h.AddrAdd(link, addr); err != nil {
			return fmt.Errorf("add address %s to %s: %w", ip.Address.String(), link.Attrs().Name, err)
		}
	}
	return nil
}

// addRoutes adds res.Routes on the pod interface, with their metric,
// table, scope, MTU and advertised MSS when set. A route without a gateway
// goes via the gateway of its family, as host-local's routes mean; with no
// gateway at all it is on-link.
//
// Equivalent to: ip route add DST via GW dev IFNAME [metric P] [table T] [scope S] [mtu M] [advmss A]
func addRoutes(h *rtnl.Conn, link netlink.Link, res *current.Result) error {
	for _, r := range res.Routes {
		gw := r.GW
		if gw == nil {
			gw = familyGateway(res.IPs, r.Dst.IP.To4() != nil)
		}
		route, err := podRoute(link, r, gw)
		if err != nil {
			return err
		}
		if err := h.RouteAdd(route); err != nil && !errors.Is(err, syscall.EEXIST) {
			return fmt.Errorf("add route %s via %v on %s: %w", r.Dst.String(), gw, link.Attrs().Name, err)
		}
	}
	return nil
}

// podRoute is r via gw on link, as netlink takes it. A route from a
// delegated IPAM plugin has not been through ipam's checks: a number netlink
// would truncate or the kernel lower, or a scope on an IPv6 route, which
// the kernel ignores, is refused rather than applied as something else.
func podRoute(link netlink.Link, r *types.Route, gw net.IP) (*netlink.Route, error) {
	dst := r.Dst
	route := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: &dst, Gw: gw,
		Priority: r.Priority, MTU: r.MTU, AdvMSS: r.AdvMSS}
	if gw == nil {
		route.Scope = netlink.SCOPE_LINK
	}
	bad := func(field string, v int) error {
		return fmt.Errorf("route %s: %s %d out of range", dst.String(), field, v)
	}
	switch {
	case !inUint32(r.Priority):
		return nil, bad("priority", r.Priority)
	case r.MTU < 0 || r.MTU > 65535-15: // the kernel would lower it to that
		return nil, bad("mtu", r.MTU)
	case r.AdvMSS < 0 || r.AdvMSS > 65535-40:
		return nil, bad("advmss", r.AdvMSS)
	case r.Table != nil && !inUint32(*r.Table):
		return nil, bad("table", *r.Table)
	case r.Scope != nil && (*r.Scope < 0 || *r.Scope > 255):
		return nil, bad("scope", *r.Scope)
	case r.Scope != nil && *r.Scope != 0 && dst.IP.To4() == nil:
		return nil, fmt.Errorf("%w: route %s: scope %d: the kernel gives every IPv6 route scope 0", ErrUnsupported, dst.String(), *r.Scope)
	}
	if r.Table != nil {
		route.Table = *r.Table
	}
	if r.Scope != nil {
		route.Scope = netlink.Scope(*r.Scope)
	}
	return route, nil
}

func inUint32(v int) bool {
	return v >= 0 && int64(v) <= math.MaxUint32
}

// familyGateway is the first gateway among ips of the family, or nil.
func familyGateway(ips []*current.IPConfig, v4 bool) net.IP {
	for _, ip := range ips {
		if ip.Gateway != nil && (ip.Address.IP.To4() != nil) == v4 {
			return ip.Gateway
		}
	}
	return nil
}

// deletePodVeth removes CNI_IFNAME from the pod netns when it is ours
// although no host veth carries nodebridge's name for it, as for a pod the
// reference plugin attached: a veth whose peer, in this netns, is a port of
// the network's bridge that names it back. Any other interface of that name
// (another network's, that a failed ADD found taken) stays. A missing netns,
// or a netns file whose mount is gone, is success: the runtime may have
// removed the netns before calling DEL.
//
// Equivalent to: ip -n POD link del IFNAME
func deletePodVeth(c *Config, p Pod) error {
	if p.Netns == "" {
		return nil
	}
	podNS, err := ns.GetNS(p.Netns)
	if err != nil {
		var missing ns.NSPathNotExistErr
		var notNS ns.NSPathNotNSErr
		if errors.As(err, &missing) || errors.As(err, &notNS) {
			return nil
		}
		return fmt.Errorf("%w: CNI_NETNS %q: %w", ErrNetns, p.Netns, err)
	}
	defer podNS.Close()
	hostNS, err := ns.GetCurrentNS()
	if err != nil {
		return fmt.Errorf("open the plugin's own netns: %w", err)
	}
	defer hostNS.Close()
	var pod netlink.Link
	err = nsDo(podNS, func() error {
		var err error
		pod, err = peeredInto(p.IfName, hostNS)
		return err
	})
	if err != nil || pod == nil {
		return err
	}
	host, err := netlink.LinkByIndex(pod.Attrs().ParentIndex)
	if err != nil || !onBridge(c, host) || host.Attrs().ParentIndex != pod.Attrs().Index {
		return nil // not a pair of ours
	}
	return delLink(host)
}

// peeredInto runs in the pod netns: it returns ifName when it is a veth
// whose peer lives in the netns other, else nil.
func peeredInto(ifName string, other ns.NetNS) (netlink.Link, error) {
	l, err := netlink.LinkByName(ifName)
	if errors.As(err, &netlink.LinkNotFoundError{}) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up %s: %w", ifName, err)
	}
	if _, ok := l.(*netlink.Veth); !ok {
		return nil, nil
	}
	id, err := netlink.GetNetNsIdByFd(int(other.Fd()))
	if err != nil || id < 0 || id != l.Attrs().NetNsID {
		return nil, nil
	}
	return l, nil
}

// onBridge reports whether l is a port of the network's bridge.
func onBridge(c *Config, l netlink.Link) bool {
	br, err := netlink.LinkByName(c.Bridge)
	return err == nil && l.Attrs().MasterIndex == br.Attrs().Index
}

// routeKey identifies a route for CHECK comparisons.
func routeKey(table int, dst net.IPNet, gw net.IP) string {
	return fmt.Sprintf("%d %s", table, (&types.Route{Dst: dst, GW: gw}).String())
}
