package bridge

import (
	"context"
	"errors"
	"fmt"
	"slices"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/nodebridge/nodebridge/pkg/rtnl"
)

// Check verifies that p is attached as prev describes: the bridge, the
// container veth with its MAC, addresses and routes, its peer on the bridge,
// the allocation, the network's rules and the pod's MAC spoof check; and the
// options the kernel shows: MTU, MAC, hairpin, port isolation and the
// bridge's promiscuous mode. The error lists every difference.
func Check(ctx context.Context, c *Config, h *Host, p Pod, prev *current.Result) error {
	rt, err := rtnl.Open()
	if err != nil {
		return err
	}
	defer rt.Close()
	br, _, err := lookupBridgeIPv6(rt, c.Bridge)
	if err != nil {
		return err
	}
	podNS, err := openNetns(p.Netns, rt)
	if err != nil {
		return err
	}
	defer podNS.Close()
	var peer int
	errs := []error{podNS.do(func() error {
		var err error
		peer, err = checkContainer(c, p, prev)
		return err
	})}
	if on := promisc(br); on != c.PromiscMode {
		errs = append(errs, fmt.Errorf("bridge %s: promiscuous mode %t, promiscMode is %t", br.Name, on, c.PromiscMode))
	}
	errs = append(errs, checkHostEnd(c, br, hostName(c, p, prev), peer), c.addresser.check(ctx, c, h, p, prev),
		checkSpoofCheck(ctx, c, h, p, prev))
	return errors.Join(errs...)
}

// checkContainer runs in the pod netns and returns the veth peer's index.
func checkContainer(c *Config, p Pod, prev *current.Result) (int, error) {
	link, err := netlink.LinkByName(p.IfName)
	if err != nil {
		return 0, fmt.Errorf("container interface %s in %s: %w", p.IfName, p.Netns, err)
	}
	if _, ok := link.(*netlink.Veth); !ok {
		return 0, fmt.Errorf("container interface %s: a %s, not a veth", p.IfName, link.Type())
	}
	var errs []error
	for _, i := range prev.Interfaces {
		if i.Name == p.IfName && i.Sandbox != "" && i.Mac != "" && i.Mac != link.Attrs().HardwareAddr.String() {
			errs = append(errs, fmt.Errorf("container interface %s: MAC %s, prevResult has %s", p.IfName, link.Attrs().HardwareAddr, i.Mac))
		}
	}
	if c.MAC != nil && link.Attrs().HardwareAddr.String() != c.MAC.String() {
		errs = append(errs, fmt.Errorf("container interface %s: MAC %s, the config asks for %s", p.IfName, link.Attrs().HardwareAddr, c.MAC))
	}
	errs = append(errs, checkMTU(c, "container interface", link), checkAddresses(link, prev), checkRoutes(link, prev))
	return link.Attrs().ParentIndex, errors.Join(errs...)
}

// checkMTU compares the MTU of a veth end with mtu, when the config sets one.
func checkMTU(c *Config, what string, link netlink.Link) error {
	if c.MTU != 0 && link.Attrs().MTU != c.MTU {
		return fmt.Errorf("%s %s: MTU %d, mtu is %d", what, link.Attrs().Name, link.Attrs().MTU, c.MTU)
	}
	return nil
}

// checkPort compares the host end's bridge-port flags with hairpinMode and
// portIsolation.
func checkPort(c *Config, link netlink.Link) error {
	pi, err := netlink.LinkGetProtinfo(link)
	if err != nil {
		return fmt.Errorf("read bridge port flags of host veth %s: %w", link.Attrs().Name, err)
	}
	var errs []error
	if pi.Hairpin != c.HairpinMode {
		errs = append(errs, fmt.Errorf("host veth %s: hairpin %t, hairpinMode is %t", link.Attrs().Name, pi.Hairpin, c.HairpinMode))
	}
	if pi.Isolated != c.PortIsolation {
		errs = append(errs, fmt.Errorf("host veth %s: isolated %t, portIsolation is %t", link.Attrs().Name, pi.Isolated, c.PortIsolation))
	}
	return errors.Join(errs...)
}

func checkAddresses(link netlink.Link, prev *current.Result) error {
	addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("list addresses of %s: %w", link.Attrs().Name, err)
	}
	var errs []error
	for _, ip := range prev.IPs {
		if !slices.ContainsFunc(addrs, func(a netlink.Addr) bool { return a.IPNet.String() == ip.Address.String() }) {
			errs = append(errs, fmt.Errorf("container interface %s: address %s missing", link.Attrs().Name, ip.Address.String()))
		}
	}
	return errors.Join(errs...)
}

// checkRoutes insists each route of prev is on the link, in its table,
// with its gateway. Like the reference, it does not compare metric, scope,
// MTU or advertised MSS.
func checkRoutes(link netlink.Link, prev *current.Result) error {
	filter := &netlink.Route{LinkIndex: link.Attrs().Index, Table: unix.RT_TABLE_UNSPEC} // every table
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, filter, netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("list routes of %s: %w", link.Attrs().Name, err)
	}
	have := map[string]bool{}
	for _, r := range routes {
		dst := defaultDst(r.Gw.To4() != nil || (r.Dst != nil && r.Dst.IP.To4() != nil))
		if r.Dst != nil {
			dst = *r.Dst
		}
		have[routeKey(r.Table, dst, r.Gw)] = true
	}
	var errs []error
	for _, r := range prev.Routes {
		gw := r.GW
		if gw == nil {
			gw = familyGateway(prev.IPs, r.Dst.IP.To4() != nil)
		}
		table := unix.RT_TABLE_MAIN
		if r.Table != nil && *r.Table != unix.RT_TABLE_UNSPEC {
			table = *r.Table
		}
		if !have[routeKey(table, r.Dst, gw)] {
			errs = append(errs, fmt.Errorf("container interface %s: route %s via %v missing%s", link.Attrs().Name, r.Dst.String(), gw, inTable(table)))
		}
	}
	return errors.Join(errs...)
}

// inTable names a table other than main for a message.
func inTable(table int) string {
	if table == unix.RT_TABLE_MAIN {
		return ""
	}
	return fmt.Sprintf(" from table %d", table)
}

// hostName is the host veth named in prev (a pod the reference plugin
// attached has a random name there), else the name nodebridge derives.
func hostName(c *Config, p Pod, prev *current.Result) string {
	for _, i := range prev.Interfaces {
		if i.Sandbox == "" && i.Name != c.Bridge && i.Name != "" {
			return i.Name
		}
	}
	return hostVethName(p)
}

// checkHostEnd insists the host veth exists, is a port of the bridge with
// the configured flags and MTU and, when the container end was found, is
// that end's peer.
func checkHostEnd(c *Config, br *netlink.Bridge, name string, peer int) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("host veth %s: %w", name, err)
	}
	errs := []error{checkMTU(c, "host veth", l)}
	if l.Attrs().MasterIndex != br.Index {
		errs = append(errs, fmt.Errorf("host veth %s is not a port of bridge %s", name, br.Name))
	} else {
		errs = append(errs, checkPort(c, l))
	}
	if peer != 0 && l.Attrs().Index != peer {
		errs = append(errs, fmt.Errorf("host veth %s (ifindex %d) is not the peer (ifindex %d) of the container interface", name, l.Attrs().Index, peer))
	}
	return errors.Join(errs...)
}
