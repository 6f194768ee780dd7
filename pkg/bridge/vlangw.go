package bridge

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"

	"github.com/vishvananda/netlink"
)

// vlanGatewayName is the interface that carries a VLAN network's gateway
// addresses: "<bridge>.<vlan>", the reference's name.
func vlanGatewayName(bridge string, vlan int) string {
	return bridge + "." + strconv.Itoa(vlan)
}

// vlanPortName is the bridge end of the gateway's veth pair, derived like
// hostVethName so every ADD finds the same one. The leading NUL keeps it
// apart from every pod's: a container ID is never empty.
func vlanPortName(bridge string, vlan int) string {
	sum := sha256.Sum256([]byte("\x00" + bridge + "\x00" + strconv.Itoa(vlan)))
	return "nb" + hex.EncodeToString(sum[:])[:13]
}

// ensureVlanGateway returns the gateway interface of a VLAN network, up,
// creating it on first use. As in the reference it is one end of a veth
// pair whose other end is a bridge port with the VLAN as its untagged PVID,
// so the host sees the VLAN's frames untagged without an 802.1Q device.
// Like the bridge, it is shared by the network's pods and never removed.
//
// Equivalent to: ip link set BR.VLAN up (after createVlanGateway when absent)
func ensureVlanGateway(c *Config, br *netlink.Bridge) (netlink.Link, error) {
	name := vlanGatewayName(br.Name, c.Vlan)
	gw, err := netlink.LinkByName(name)
	if errors.As(err, &netlink.LinkNotFoundError{}) {
		gw, err = createVlanGateway(c, br, name)
	}
	if err != nil {
		return nil, err
	}
	if gw.Attrs().Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(gw); err != nil {
			return nil, fmt.Errorf("set vlan gateway %s up: %w", name, err)
		}
	}
	return gw, nil
}

// createVlanGateway makes the pair and puts its port in the VLAN; a pair
// half made is removed. Losing the race to a concurrent ADD is not an error.
//
// Equivalent to: ip link add PORT mtu BRMTU master BR up type veth peer name BR.VLAN;
// bridge vlan add dev PORT vid VLAN pvid untagged master
func createVlanGateway(c *Config, br *netlink.Bridge, name string) (netlink.Link, error) {
	la := netlink.NewLinkAttrs()
	la.Name = vlanPortName(br.Name, c.Vlan)
	la.MTU = br.MTU
	la.MasterIndex = br.Index
	la.Flags = net.FlagUp
	port := &netlink.Veth{LinkAttrs: la, PeerName: name}
	err := netlink.LinkAdd(port)
	if err != nil && !errors.Is(err, syscall.EEXIST) {
		return nil, fmt.Errorf("create vlan gateway %s (peer %s on bridge %s): %w", name, la.Name, br.Name, err)
	}
	if err == nil {
		plan := portVlanPlan(c.Vlan, nil, c.PreserveDefaultVlan, defaultPVID(br))
		if err := applyVlanPlan(port, plan); err != nil {
			err = vlanKernelError(fmt.Errorf("vlan %d gateway %s: %w", c.Vlan, name, err))
			return nil, fmtJoin(err, deleteLink(la.Name))
		}
	}
	gw, err := netlink.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("look up vlan gateway %s: %w", name, err)
	}
	return gw, nil
}
