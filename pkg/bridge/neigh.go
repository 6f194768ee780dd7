package bridge

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"syscall"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"

	"github.com/nodebridge/nodebridge/pkg/rtnl"
)

// The neighbour entries a new pod's first packets need, both ways, when the
// network is the pods' gateway: in the pod, each gateway at the MAC of the
// link holding it; on that link in the host, each pod address at the pod's
// MAC. nodebridge chose or read both MACs, so no ARP or ND has to succeed
// first. Resolving them instead races the new bridge port: a request sent
// before the port forwards is lost, and the kernel asks again only a second
// later, so the pod's first packet (or the first reply to it, from another
// node) waits that second. The entries are STALE: used at once, confirmed by
// the kernel's normal probing. The pod's entries are written by
// configureContainer, over its socket in the pod netns, from gatewayMAC.

// rereadGatewayLink returns gwLink as the kernel has it now, after the pod's
// veth joined the bridge: a bridge made without a fixed MAC (not by
// nodebridge) takes its lowest port's, so the veth just added may have
// changed it.
func rereadGatewayLink(h *rtnl.Conn, gwLink netlink.Link) (netlink.Link, error) {
	l, err := h.LinkByIndex(gwLink.Attrs().Index)
	if err != nil {
		return nil, fmt.Errorf("look up gateway link %s: %w", gwLink.Attrs().Name, err)
	}
	return l, nil
}

// gatewayMAC is the MAC the pod's gateways sit at: that of gwLink, the link
// holding them; nil when the network is not the pods' gateway or the link
// has no usable MAC (the pod then resolves its gateway itself).
func gatewayMAC(gwLink netlink.Link) net.HardwareAddr {
	if gwLink == nil {
		return nil
	}
	mac := gwLink.Attrs().HardwareAddr
	if len(mac) != 6 || bytes.Equal(mac, make([]byte, 6)) {
		return nil
	}
	return mac
}

// seedGateways runs in the pod netns: each family's gateway at gwMAC on
// link, the pod's interface; nothing when gwMAC is nil.
//
// Equivalent to: ip -n POD neigh replace GW lladdr GWMAC dev IFNAME nud stale
func seedGateways(h *rtnl.Conn, link netlink.Link, ips []*current.IPConfig, gwMAC net.HardwareAddr) error {
	if gwMAC == nil {
		return nil
	}
	for _, v4 := range []bool{true, false} {
		if gw := familyGateway(ips, v4); gw != nil {
			if err := setStale(h, link, gw, gwMAC); err != nil {
				return err
			}
		}
	}
	return nil
}

// seedPod puts each pod address at the pod's MAC on gwLink, in the host;
// nothing when the network is not the pods' gateway. A failure leaves none.
//
// Equivalent to: ip neigh replace PODIP lladdr PODMAC dev BR nud stale
func seedPod(h *rtnl.Conn, gwLink netlink.Link, pair *vethPair, res *current.Result) error {
	if gwLink == nil {
		return nil
	}
	for _, ip := range res.IPs {
		if err := setStale(h, gwLink, ip.Address.IP, pair.podMAC); err != nil {
			return errors.Join(err, forgetPod(h, gwLink, res))
		}
	}
	return nil
}

// setStale writes ip at mac on link as a STALE neighbour, replacing any
// entry of that address (a reused pod address's old MAC among them).
func setStale(h *rtnl.Conn, link netlink.Link, ip net.IP, mac net.HardwareAddr) error {
	n := &netlink.Neigh{LinkIndex: link.Attrs().Index, Family: nl.GetIPFamily(ip), IP: ip, HardwareAddr: mac, State: netlink.NUD_STALE}
	if err := h.NeighSet(n); err != nil {
		return fmt.Errorf("set neighbour %s lladdr %s on %s: %w", ip, mac, link.Attrs().Name, err)
	}
	return nil
}

// forgetPod removes the host's entries for the pod's addresses, so a failed
// ADD leaves none behind; one already gone is fine.
//
// Equivalent to: ip neigh del PODIP dev BR
func forgetPod(h *rtnl.Conn, link netlink.Link, res *current.Result) error {
	var errs []error
	for _, ip := range res.IPs {
		n := &netlink.Neigh{LinkIndex: link.Attrs().Index, Family: nl.GetIPFamily(ip.Address.IP), IP: ip.Address.IP}
		if err := h.NeighDel(n); err != nil && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("delete neighbour %s on %s: %w", ip.Address.IP, link.Attrs().Name, err))
		}
	}
	return errors.Join(errs...)
}
