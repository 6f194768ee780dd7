package routes

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Overhead is what VXLAN encapsulation adds to a packet on an underlay of
// the family: outer IP header (20 or 40), UDP (8), VXLAN (8) and the
// inner Ethernet header (14).
func Overhead(v6 bool) int {
	if v6 {
		return 70
	}
	return 50
}

// VTEPMAC is the MAC address of the VTEP of the node whose underlay
// address is ip: every node derives every peer's from the peer's
// InternalIP, so no Node annotation is needed. Locally administered
// unicast: 0e:6e and the four bytes of an IPv4 address, or 0e and five
// bytes of the SHA-256 of an IPv6 address (two addresses sharing them are
// refused by the agent, which compares every peer's).
func VTEPMAC(ip netip.Addr) net.HardwareAddr {
	if ip.Is4() {
		b := ip.As4()
		return net.HardwareAddr{0x0e, 0x6e, b[0], b[1], b[2], b[3]}
	}
	b := ip.As16()
	h := sha256.Sum256(b[:])
	return net.HardwareAddr{0x0e, h[0], h[1], h[2], h[3], h[4]}
}

// Tunnel is a VXLAN device of one family and the peers it reaches.
type Tunnel struct {
	Name     string
	VNI      int
	Port     int        // UDP destination port
	Local    netip.Addr // the node's InternalIP of the family: outer source address
	Underlay *Underlay  // the link holding Local: the device's MTU is its less Overhead
	// VTEP is the device's own address, the first address of the node's
	// podCIDR of the family, so that replies to what the node sends through
	// the tunnel come back through it; invalid: none.
	VTEP  netip.Addr
	Peers []Peer
}

// Peer is one remote VTEP.
type Peer struct {
	Node   string
	VTEP   netip.Addr       // the first address of its podCIDR: the gateway of routes to it
	MAC    net.HardwareAddr // VTEPMAC(Remote)
	Remote netip.Addr       // its InternalIP: outer destination address
}

// v6 reports whether t carries IPv6.
func (t *Tunnel) v6() bool { return t.Local.Is6() }

// SyncTunnel creates or repairs t's device, then converges its neighbour
// entries (peer VTEP to MAC) and its forwarding entries (peer MAC to
// InternalIP), both permanent, to t's peers. It returns the device's
// index and how many changes it made.
// Equivalent to:
//
//	ip link add NAME address MAC mtu M type vxlan id VNI local LOCAL dev UL dstport PORT nolearning
//	ip addr replace VTEP/32 dev NAME; ip link set NAME up
//	ip neigh replace PEER-VTEP lladdr PEER-MAC dev NAME nud permanent
//	bridge fdb replace PEER-MAC dev NAME dst PEER-IP self permanent
func (s *Syncer) SyncTunnel(t *Tunnel) (index, changes int, err error) {
	link, changes, err := s.ensureDevice(t)
	if err != nil {
		return 0, changes, err
	}
	index = link.Attrs().Index
	n, err := s.syncNeighbours(t, index)
	changes += n
	m, ferr := s.syncFDB(t, index)
	changes += m
	return index, changes, errors.Join(err, ferr)
}

// ensureDevice creates t's device, or recreates it when a setting the
// kernel cannot change in place differs (VNI, port, local address,
// underlay link, learning), and sets its MAC, MTU, address and state.
func (s *Syncer) ensureDevice(t *Tunnel) (netlink.Link, int, error) {
	changes := 0
	mac, mtu := VTEPMAC(t.Local), t.Underlay.MTU-Overhead(t.v6())
	link, err := s.h.LinkByName(t.Name)
	var nf netlink.LinkNotFoundError
	switch {
	case errors.As(err, &nf):
		link = nil
	case err != nil:
		return nil, 0, fmt.Errorf("ip link show %s: %w", t.Name, err)
	}
	if link != nil && !sameVXLAN(link, t) {
		s.log.Info("vxlan device recreated: its settings changed", "link", t.Name, "local", t.Local, "vni", t.VNI, "port", t.Port)
		if err := s.h.LinkDel(link); err != nil {
			return nil, 0, fmt.Errorf("ip link del %s (to recreate it with local %s, id %d): %w", t.Name, t.Local, t.VNI, err)
		}
		link, changes = nil, changes+1
	}
	if link == nil {
		v := &netlink.Vxlan{
			LinkAttrs: netlink.LinkAttrs{Name: t.Name, MTU: mtu, HardwareAddr: mac},
			VxlanId:   t.VNI, VtepDevIndex: t.Underlay.LinkIndex, SrcAddr: net.IP(t.Local.AsSlice()), Port: t.Port,
		}
		if err := s.h.LinkAdd(v); err != nil {
			if errors.Is(err, unix.EEXIST) {
				err = fmt.Errorf("%w (another VXLAN device, flannel.1 say, has VNI %d on UDP port %d: delete it, or give --vxlan-vni another VNI)", err, t.VNI, t.Port)
			}
			return nil, changes, fmt.Errorf("ip link add %s type vxlan id %d local %s dev %s dstport %d: %w",
				t.Name, t.VNI, t.Local, t.Underlay.LinkName, t.Port, err)
		}
		if link, err = s.h.LinkByName(t.Name); err != nil {
			return nil, changes, fmt.Errorf("ip link show %s after adding it: %w", t.Name, err)
		}
		s.log.Info("vxlan device added", "link", t.Name, "vni", t.VNI, "local", t.Local, "dev", t.Underlay.LinkName, "port", t.Port, "mtu", mtu, "mac", mac.String())
		changes++
	}
	n, err := s.setDevice(link, t, mac, mtu)
	return link, changes + n, err
}

// sameVXLAN reports whether link is a VXLAN device with t's settings.
func sameVXLAN(link netlink.Link, t *Tunnel) bool {
	v, ok := link.(*netlink.Vxlan)
	if !ok {
		return false
	}
	src, _ := netip.AddrFromSlice(v.SrcAddr)
	return v.VxlanId == t.VNI && v.Port == t.Port && src.Unmap() == t.Local && v.VtepDevIndex == t.Underlay.LinkIndex &&
		!v.Learning && (v.Group == nil || v.Group.IsUnspecified())
}

// setDevice brings link's MAC, MTU and address to t's and sets it up.
func (s *Syncer) setDevice(link netlink.Link, t *Tunnel, mac net.HardwareAddr, mtu int) (int, error) {
	changes := 0
	a := link.Attrs()
	if !bytes.Equal(a.HardwareAddr, mac) {
		if err := s.h.LinkSetHardwareAddr(link, mac); err != nil {
			return changes, fmt.Errorf("ip link set %s address %s: %w", t.Name, mac, err)
		}
		changes++
	}
	if a.MTU != mtu {
		if err := s.h.LinkSetMTU(link, mtu); err != nil {
			return changes, fmt.Errorf("ip link set %s mtu %d: %w", t.Name, mtu, err)
		}
		changes++
	}
	n, err := s.setVTEPAddr(link, t)
	changes += n
	if err != nil {
		return changes, err
	}
	if a.Flags&net.FlagUp == 0 {
		if err := s.h.LinkSetUp(link); err != nil {
			return changes, fmt.Errorf("ip link set %s up: %w", t.Name, err)
		}
		changes++
	}
	return changes, nil
}

// setVTEPAddr leaves t.VTEP, as a host address, the device's only address
// of its family but for link-local ones.
func (s *Syncer) setVTEPAddr(link netlink.Link, t *Tunnel) (int, error) {
	family := netlink.FAMILY_V4
	if t.v6() {
		family = netlink.FAMILY_V6
	}
	have, err := s.h.AddrList(link, family)
	if err != nil {
		return 0, fmt.Errorf("ip addr show dev %s: %w", t.Name, err)
	}
	changes, found := 0, false
	for i := range have {
		a := &have[i]
		ip, _ := netip.AddrFromSlice(a.IP)
		ones, _ := a.Mask.Size()
		ip = ip.Unmap()
		if ip.IsLinkLocalUnicast() {
			continue
		}
		if t.VTEP.IsValid() && ip == t.VTEP && ones == t.VTEP.BitLen() {
			found = true
			continue
		}
		if err := s.h.AddrDel(link, a); err != nil {
			return changes, fmt.Errorf("ip addr del %s dev %s: %w", a.IPNet, t.Name, err)
		}
		changes++
	}
	if found || !t.VTEP.IsValid() {
		return changes, nil
	}
	addr := &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(t.VTEP, t.VTEP.BitLen()))}
	if t.v6() {
		addr.Flags = unix.IFA_F_NODAD
	}
	if err := s.h.AddrReplace(link, addr); err != nil {
		return changes, fmt.Errorf("ip addr replace %s dev %s: %w", addr.IPNet, t.Name, err)
	}
	return changes + 1, nil
}

// syncNeighbours makes each peer's VTEP resolve to its MAC, permanently,
// and deletes the device's other permanent entries (peers gone or moved).
func (s *Syncer) syncNeighbours(t *Tunnel, index int) (int, error) {
	family := netlink.FAMILY_V4
	if t.v6() {
		family = netlink.FAMILY_V6
	}
	have, err := s.h.NeighList(index, family)
	if err != nil {
		return 0, fmt.Errorf("ip neigh show dev %s: %w", t.Name, err)
	}
	want := make(map[netip.Addr]*Peer, len(t.Peers))
	for i := range t.Peers {
		want[t.Peers[i].VTEP] = &t.Peers[i]
	}
	var errs []error
	changes, done := 0, make(map[netip.Addr]bool, len(want))
	for i := range have {
		h := &have[i]
		ip, _ := netip.AddrFromSlice(h.IP)
		ip = ip.Unmap()
		p, wanted := want[ip]
		switch {
		case wanted && h.State == netlink.NUD_PERMANENT && bytes.Equal(h.HardwareAddr, p.MAC):
			done[ip] = true
		case !wanted && h.State == netlink.NUD_PERMANENT:
			if err := s.h.NeighDel(h); err != nil && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("ip neigh del %s dev %s: %w", ip, t.Name, err))
				continue
			}
			s.log.Info("vxlan neighbour deleted", "link", t.Name, "vtep", ip, "mac", h.HardwareAddr.String())
			changes++
		}
	}
	for i := range t.Peers {
		p := &t.Peers[i]
		if done[p.VTEP] {
			continue
		}
		n := &netlink.Neigh{LinkIndex: index, Family: family, State: netlink.NUD_PERMANENT,
			IP: net.IP(p.VTEP.AsSlice()), HardwareAddr: p.MAC}
		if err := s.h.NeighSet(n); err != nil {
			errs = append(errs, fmt.Errorf("ip neigh replace %s lladdr %s dev %s (node %s): %w", p.VTEP, p.MAC, t.Name, p.Node, err))
			continue
		}
		s.log.Info("vxlan neighbour set", "link", t.Name, "vtep", p.VTEP, "mac", p.MAC.String(), "node", p.Node)
		done[p.VTEP] = true
		changes++
	}
	return changes, errors.Join(errs...)
}

// syncFDB makes each peer's MAC forward to its InternalIP, permanently,
// and deletes every other forwarding entry of the device: a peer gone, a
// peer's old address, an entry added by hand.
func (s *Syncer) syncFDB(t *Tunnel, index int) (int, error) {
	have, err := s.h.NeighList(index, unix.AF_BRIDGE)
	if err != nil {
		return 0, fmt.Errorf("bridge fdb show dev %s: %w", t.Name, err)
	}
	want := make(map[string]*Peer, len(t.Peers))
	for i := range t.Peers {
		want[t.Peers[i].MAC.String()] = &t.Peers[i]
	}
	left := make(map[string]int, len(have)) // entries per MAC not yet dealt with
	for i := range have {
		left[have[i].HardwareAddr.String()]++
	}
	var errs []error
	changes, done := 0, make(map[string]bool, len(want))
	for i := range have {
		h := &have[i]
		mac := h.HardwareAddr.String()
		dst, _ := netip.AddrFromSlice(h.IP)
		p, wanted := want[mac]
		left[mac]--
		switch {
		case wanted && !done[mac] && h.State&netlink.NUD_PERMANENT != 0 && dst.Unmap() == p.Remote:
			done[mac] = true
			continue
		case wanted && !done[mac] && left[mac] == 0:
			continue // the last entry of a wanted MAC, wrong: replaced below, never missing meanwhile
		}
		d := &netlink.Neigh{LinkIndex: index, Family: unix.AF_BRIDGE, Flags: netlink.NTF_SELF, IP: h.IP, HardwareAddr: h.HardwareAddr}
		if err := s.h.NeighDel(d); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("bridge fdb del %s dev %s dst %s: %w", mac, t.Name, h.IP, err))
			continue
		}
		s.log.Info("vxlan fdb entry deleted", "link", t.Name, "mac", mac, "dst", h.IP)
		changes++
	}
	for i := range t.Peers {
		p := &t.Peers[i]
		if done[p.MAC.String()] {
			continue
		}
		n := &netlink.Neigh{LinkIndex: index, Family: unix.AF_BRIDGE, Flags: netlink.NTF_SELF,
			State: netlink.NUD_PERMANENT, IP: net.IP(p.Remote.AsSlice()), HardwareAddr: p.MAC}
		if err := s.h.NeighSet(n); err != nil {
			errs = append(errs, fmt.Errorf("bridge fdb replace %s dev %s dst %s (node %s): %w", p.MAC, t.Name, p.Remote, p.Node, err))
			continue
		}
		s.log.Info("vxlan fdb entry set", "link", t.Name, "mac", p.MAC.String(), "dst", p.Remote, "node", p.Node)
		done[p.MAC.String()] = true
		changes++
	}
	return changes, errors.Join(errs...)
}

// DeleteTunnel deletes the VXLAN device name, with its routes and
// entries; one not there, or not a VXLAN device, is left alone.
// Equivalent to: ip link del NAME type vxlan
func (s *Syncer) DeleteTunnel(name string) (bool, error) {
	link, err := s.h.LinkByName(name)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("ip link show %s: %w", name, err)
	}
	if _, ok := link.(*netlink.Vxlan); !ok {
		return false, nil
	}
	if err := s.h.LinkDel(link); err != nil {
		return false, fmt.Errorf("ip link del %s: %w", name, err)
	}
	s.log.Info("vxlan device deleted", "link", name)
	return true, nil
}
