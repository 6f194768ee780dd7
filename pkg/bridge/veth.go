package bridge

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"

	"github.com/nodebridge/nodebridge/pkg/rtnl"
)

// vethPair is the pod's veth: the host end on the bridge, the container end
// in the pod netns as CNI_IFNAME with MAC podMAC.
type vethPair struct {
	host   *netlink.Veth
	podMAC net.HardwareAddr
	// podMACChosen is set when the pod's MAC came from the config, not
	// from its address (see podMAC): only then may caches hold its address
	// at another MAC, and ADD announces it.
	podMACChosen bool
}

// hostVethName derives the host end's name from the attachment, so DEL and
// GC find it even when the pod netns is gone: "nb" + 13 hex digits.
func hostVethName(p Pod) string {
	sum := sha256.Sum256([]byte(p.ContainerID + "\x00" + p.IfName))
	return "nb" + hex.EncodeToString(sum[:])[:13]
}

// isHostVethName reports whether name has hostVethName's form.
func isHostVethName(name string) bool {
	if len(name) != 15 || !strings.HasPrefix(name, "nb") {
		return false
	}
	_, err := hex.DecodeString(name[2:] + "0")
	return err == nil
}

// createVeth makes the pair with the container end created directly in the
// pod netns, the host end up and on the bridge with the port options; ips
// are the pod's addresses, which its MAC comes from (podMAC).
//
// Equivalent to: ip link add HOST mtu MTU master BR up type veth peer name IFNAME netns POD
func createVeth(c *Config, h *rtnl.Conn, br *netlink.Bridge, p Pod, podNS *podNetns, ips []*current.IPConfig) (*vethPair, error) {
	// The pod end's MAC is ours, which saves reading it back from inside
	// its netns; the host end's is the kernel's pick, which the reply
	// carries.
	podMAC, chosen, err := pickPodMAC(c, ips)
	if err != nil {
		return nil, err
	}
	la := netlink.NewLinkAttrs()
	la.Name = hostVethName(p)
	la.MTU = c.MTU
	la.Flags = net.FlagUp
	v := &netlink.Veth{LinkAttrs: la, PeerName: p.IfName, PeerHardwareAddr: podMAC}
	v.Index, v.HardwareAddr, err = h.AddVeth(v, br.Index, podNS.fd)
	if errors.Is(err, syscall.EEXIST) {
		if err = clearStaleVeth(p, podNS); err == nil {
			v.Index, v.HardwareAddr, err = h.AddVeth(v, br.Index, podNS.fd)
		}
	}
	if err != nil {
		if !errors.Is(err, syscall.EEXIST) { // created, then attaching failed: remove our half-made pair
			err = errors.Join(err, deleteLink(la.Name))
		}
		return nil, fmt.Errorf("create veth %s (peer %s in %s) on bridge %s: %w", la.Name, p.IfName, p.Netns, c.Bridge, err)
	}
	pair := &vethPair{host: v, podMAC: podMAC, podMACChosen: chosen}
	if err := configurePort(c, h, br, v); err != nil {
		return nil, fmtJoin(err, pair.delete())
	}
	return pair, nil
}

// pickPodMAC is the pod end's MAC: the config's (runtimeConfig.mac,
// args.cni.mac, CNI_ARGS MAC=), reported as chosen; else one made from the
// pod's first IPv4 address, 6e:62 ("nb", locally administered, unicast)
// then the address's four bytes; else, without IPv4, a random one. A MAC
// made from the address is right in every cache that knew the address:
// when host-local hands the address out again, pods that talked to its
// last holder reach the new one at once. The reference sends a gratuitous
// ARP for that instead, flooded to every port of the bridge and into every
// pod (about 0.9 ms of each ADD at 300 pods here), and lost when the port
// does not forward yet.
func pickPodMAC(c *Config, ips []*current.IPConfig) (mac net.HardwareAddr, chosen bool, err error) {
	if c.MAC != nil {
		return c.MAC, true, nil
	}
	for _, ip := range ips {
		if v4 := ip.Address.IP.To4(); v4 != nil {
			return net.HardwareAddr{0x6e, 0x62, v4[0], v4[1], v4[2], v4[3]}, false, nil
		}
	}
	mac, err = randomMAC()
	return mac, false, err
}

// configurePort sets the bridge-port options of the pod's host end: hairpin,
// isolation from the other isolated ports, and its VLANs. Each is a change
// from a new port's defaults, so nothing is sent for options left off.
//
// Equivalent to: bridge link set dev HOST hairpin on isolated on; bridge vlan add dev HOST ...
func configurePort(c *Config, h *rtnl.Conn, br *netlink.Bridge, port netlink.Link) error {
	name := port.Attrs().Name
	if err := h.SetPortFlags(port.Attrs().Index, c.HairpinMode, c.PortIsolation); err != nil {
		return fmt.Errorf("set hairpinMode %t, portIsolation %t on %s: %w", c.HairpinMode, c.PortIsolation, name, err)
	}
	plan := portVlanPlan(c.Vlan, trunkIDs(c.VlanTrunk), c.PreserveDefaultVlan, defaultPVID(br))
	if err := applyVlanPlan(port, plan); err != nil {
		return vlanKernelError(fmt.Errorf("%s: %w", c.vlanFields(), err))
	}
	return nil
}

// clearStaleVeth handles EEXIST: the container interface name taken in the
// pod is an error the operator must see; a host end left by an earlier,
// interrupted ADD of this attachment is removed, and so is a pair a DEL of
// it retired (down) and its reaper has not deleted yet. A link of another
// type holding the host end's name is not ours: it stays, and is the error.
func clearStaleVeth(p Pod, podNS *podNetns) error {
	l, err := lookupLink(hostVethName(p))
	if err != nil {
		return err
	}
	if l != nil {
		if err := checkVeth(l); err != nil {
			return err
		}
		if l.Attrs().Flags&net.FlagUp == 0 { // retired, or left by an ADD cut short
			if err := delLink(l); err != nil {
				return err
			}
			l = nil
		}
	}
	taken := podNS.do(func() error {
		_, err := netlink.LinkByName(p.IfName)
		return err
	}) == nil
	if taken {
		return fmt.Errorf("container interface %s already exists in netns %s: %w", p.IfName, p.Netns, syscall.EEXIST)
	}
	if l == nil {
		return nil
	}
	return delLink(l)
}

// checkVeth insists l, found under a host end's name, is a veth: the only
// type nodebridge deletes by that name. The error wraps EEXIST, the name
// being taken, so a failed create does not delete the link either.
func checkVeth(l netlink.Link) error {
	if l.Type() == "veth" {
		return nil
	}
	return fmt.Errorf("link %s is a %s, not a veth: nodebridge derives that name for the pod's host veth and leaves links of other types alone; remove or rename it: %w",
		l.Attrs().Name, l.Type(), syscall.EEXIST)
}

// deleteHostVeth removes the host veth name; missing is fine. A link of
// another type by that name stays and is logged: GC must not fail on it,
// or it would never end.
//
// Equivalent to: ip link del NAME type veth
func deleteHostVeth(h *Host, name string) error {
	l, err := lookupLink(name)
	if l == nil {
		return err
	}
	if err := checkVeth(l); err != nil {
		h.logf("%v", err)
		return nil
	}
	return delLink(l)
}

// delete removes the pair; deleting one end removes both.
func (v *vethPair) delete() error {
	return deleteLink(v.host.Name)
}
