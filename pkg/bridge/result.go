package bridge

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"

	"github.com/nodebridge/nodebridge/pkg/rtnl"
)

// Indexes into Result.Interfaces; IPs point at the container interface.
const (
	bridgeIface    = 0
	hostIface      = 1
	containerIface = 2
)

// newResult lists the three interfaces.
func newResult(c *Config, br *netlink.Bridge, v *vethPair, p Pod) *current.Result {
	return &current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		Interfaces: []*current.Interface{
			bridgeIface:    {Name: br.Name, Mac: br.HardwareAddr.String()},
			hostIface:      {Name: v.host.Name, Mac: v.host.HardwareAddr.String()},
			containerIface: {Name: p.IfName, Mac: v.podMAC.String(), Sandbox: p.Netns},
		},
	}
}

// setIPs copies the IPAM result into res: addresses on the container
// interface, routes (plus a default route per family when isDefaultGateway)
// and DNS (the network config's own DNS wins, as in the reference). When the
// bridge is the gateway and IPAM named none, the subnet's first address is,
// as in the reference.
func setIPs(c *Config, res, ipamRes *current.Result) error {
	for _, ip := range ipamRes.IPs {
		ip.Interface = current.Int(containerIface)
		if ip.Gateway == nil && c.IsGateway {
			ip.Gateway = firstHost(ip.Address)
		}
		res.IPs = append(res.IPs, ip)
	}
	res.Routes = append(res.Routes, ipamRes.Routes...)
	res.DNS = ipamRes.DNS
	if !c.DNS.IsEmpty() {
		res.DNS = c.DNS
	}
	if c.IsDefaultGateway {
		return addDefaultRoutes(res)
	}
	return nil
}

// addDefaultRoutes adds 0.0.0.0/0 and ::/0 via the first gateway of each
// family, unless IPAM already routes the default the same way.
func addDefaultRoutes(res *current.Result) error {
	done := map[bool]bool{}
	for _, ip := range res.IPs {
		v4 := ip.Address.IP.To4() != nil
		if ip.Gateway == nil || done[v4] {
			continue
		}
		done[v4] = true
		dst := defaultDst(v4)
		if r := findRoute(res.Routes, dst); r != nil {
			if r.GW != nil && !r.GW.Equal(ip.Gateway) {
				return fmt.Errorf("%w: isDefaultGateway: ipam.routes already sends %s via %s, not the gateway %s", ErrInvalid, dst.String(), r.GW, ip.Gateway)
			}
			continue
		}
		res.Routes = append(res.Routes, &types.Route{Dst: dst, GW: ip.Gateway})
	}
	return nil
}

func defaultDst(v4 bool) net.IPNet {
	if v4 {
		return net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
	}
	return net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
}

func findRoute(routes []*types.Route, dst net.IPNet) *types.Route {
	for _, r := range routes {
		if r.Dst.String() == dst.String() {
			return r
		}
	}
	return nil
}

// gatewayPrefixes are the gateways of res with their subnets' prefix
// length: what goes on the bridge when isGateway.
func gatewayPrefixes(res *current.Result) []netip.Prefix {
	var gws []netip.Prefix
	for _, ip := range res.IPs {
		if ip.Gateway == nil {
			continue
		}
		a, ok := netip.AddrFromSlice(ip.Gateway)
		ones, _ := ip.Address.Mask.Size()
		if ok {
			gws = append(gws, netip.PrefixFrom(a.Unmap(), ones))
		}
	}
	return gws
}

// firstHost is the address after the subnet's network address.
func firstHost(n net.IPNet) net.IP {
	p := toPrefix(&n).Masked()
	return net.IP(p.Addr().Next().AsSlice())
}

// ensureGateways puts every gateway on the bridge, or on the VLAN gateway
// interface (then listed in res) for a VLAN network, and turns on forwarding
// for its family, when the network is the pods' gateway. It returns the link
// holding the gateways, read after them (see rereadGatewayLink), nil when
// the network is not the pods' gateway.
func ensureGateways(c *Config, h *rtnl.Conn, br *netlink.Bridge, res *current.Result) (netlink.Link, error) {
	gws := gatewayPrefixes(res)
	if !c.IsGateway || len(gws) == 0 {
		return nil, nil
	}
	var link netlink.Link = br
	if c.Vlan != 0 {
		gw, err := ensureVlanGateway(c, br)
		if err != nil {
			return nil, err
		}
		link = gw
		res.Interfaces = append(res.Interfaces, &current.Interface{Name: gw.Attrs().Name, Mac: gw.Attrs().HardwareAddr.String()})
	}
	var forwarding [2]bool // turned on already: IPv4, IPv6
	for _, gw := range gws {
		if err := ensureGateway(c, h, link, gw, gws); err != nil {
			return nil, err
		}
		v6 := gw.Addr().Is6()
		if f := &forwarding[btoi(v6)]; !*f {
			if err := enableForwarding(h, v6); err != nil {
				return nil, err
			}
			*f = true
		}
	}
	return rereadGatewayLink(h, link)
}

// btoi is 1 for true, 0 for false.
func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
