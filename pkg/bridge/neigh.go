package bridge

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"syscall"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
)

// seedNeighbours writes the neighbour entries a new pod's first packets
// need, both ways, when the network is the pods' gateway: in the pod, each
// gateway at the MAC of the link holding it; on that link in the host, each
// pod address at the pod's MAC. nodebridge chose or read both MACs, so no
// ARP or ND has to succeed first. Resolving them instead races the new
// bridge port: a request sent before the port forwards is lost, and the
// kernel asks again only a second later, so the pod's first packet (or the
// first reply to it, from another node) waits that second. The entries are
// STALE: used at once, confirmed by the kernel's normal probing.
//
// Equivalent to: ip -n POD neigh replace GW lladdr GWMAC dev IFNAME nud stale;
// ip neigh replace PODIP lladdr PODMAC dev BR nud stale
func seedNeighbours(podNS ns.NetNS, ifName string, gwLink netlink.Link, pair *vethPair, res *current.Result) error {
	if gwLink == nil {
		return nil
	}
	// Read now: a bridge made without a fixed MAC (not by nodebridge) takes
	// its lowest port's, so the veth just added may have changed it.
	name := gwLink.Attrs().Name
	gwLink, err := netlink.LinkByIndex(gwLink.Attrs().Index)
	if err != nil {
		return fmt.Errorf("look up gateway link %s: %w", name, err)
	}
	gwMAC := gwLink.Attrs().HardwareAddr
	if len(gwMAC) != 6 || bytes.Equal(gwMAC, make([]byte, 6)) {
		gwMAC = nil // nothing to point the pod at: it resolves the gateway itself
	}
	err = podNS.Do(func(ns.NetNS) error {
		link, err := netlink.LinkByName(ifName)
		if err != nil {
			return fmt.Errorf("look up %s in %s: %w", ifName, podNS.Path(), err)
		}
		for _, v4 := range []bool{true, false} {
			if gw := familyGateway(res.IPs, v4); gw != nil && gwMAC != nil {
				if err := setStale(link, gw, gwMAC); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, ip := range res.IPs {
		if err := setStale(gwLink, ip.Address.IP, pair.podMAC); err != nil {
			return errors.Join(err, forgetPod(gwLink, res))
		}
	}
	return nil
}

// setStale writes ip at mac on link as a STALE neighbour, replacing any
// entry of that address (a reused pod address's old MAC among them).
func setStale(link netlink.Link, ip net.IP, mac net.HardwareAddr) error {
	n := &netlink.Neigh{LinkIndex: link.Attrs().Index, Family: ipFamily(ip), IP: ip, HardwareAddr: mac, State: netlink.NUD_STALE}
	if err := netlink.NeighSet(n); err != nil {
		return fmt.Errorf("set neighbour %s lladdr %s on %s: %w", ip, mac, link.Attrs().Name, err)
	}
	return nil
}

// forgetPod removes the host's entries for the pod's addresses, so a failed
// ADD leaves none behind; one already gone is fine.
//
// Equivalent to: ip neigh del PODIP dev BR
func forgetPod(link netlink.Link, res *current.Result) error {
	var errs []error
	for _, ip := range res.IPs {
		n := &netlink.Neigh{LinkIndex: link.Attrs().Index, Family: ipFamily(ip.Address.IP), IP: ip.Address.IP}
		if err := netlink.NeighDel(n); err != nil && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("delete neighbour %s on %s: %w", ip.Address.IP, link.Attrs().Name, err))
		}
	}
	return errors.Join(errs...)
}

// ipFamily is the netlink address family of ip.
func ipFamily(ip net.IP) int {
	if ip.To4() != nil {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}
