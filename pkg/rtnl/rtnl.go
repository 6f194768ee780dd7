// Package rtnl makes the rtnetlink requests of a CNI ADD, and the agent's
// dumps and route changes, over a blocking socket of its own, each answered
// before the next; Watch tells the agent whether anything changed.
//
// netlink's Handle registers every socket with the Go runtime's poller,
// whose thread then wakes at every reply, and receives each reply into a
// fresh 64 KiB stack buffer; in a process exec'd per pod that costs more
// than the requests. A Conn's socket blocks and reuses one buffer. Requests
// are encoded as netlink's Handle encodes them, and links are decoded into
// netlink's types with the fields an ADD reads, so callers keep netlink's
// types; what a Conn does not do (VLANs, bridge creation, DEL and CHECK)
// stays with netlink's Handle.
package rtnl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"net"
	"slices"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Conn is an rtnetlink socket in the netns of the thread that opened it.
type Conn struct {
	fd  int
	seq uint32
	buf []byte
}

// bufSize holds any single reply these requests get: a link is 2 KiB.
const bufSize = 32 << 10

// Constants of linux/rtnetlink.h and linux/veth.h that x/sys/unix lacks.
const (
	rtextFilterVF   = 1 // RTEXT_FILTER_VF
	vethInfoPeer    = 1 // VETH_INFO_PEER
	devconfAcceptRA = 3 // DEVCONF_ACCEPT_RA of linux/ipv6.h: the index of accept_ra in IFLA_INET6_CONF
)

// Open opens an rtnetlink socket in the calling thread's netns. The kernel
// caps its acknowledgements (no echoed request) and adds its own message
// to an error, which the error then carries.
func Open() (*Conn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open rtnetlink socket: %w", err)
	}
	for _, opt := range []int{unix.NETLINK_CAP_ACK, unix.NETLINK_EXT_ACK} {
		if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, opt, 1); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("set rtnetlink socket option %d: %w", opt, err)
		}
	}
	return &Conn{fd: fd, buf: make([]byte, bufSize)}, nil
}

// Close closes the socket.
func (r *Conn) Close() error { return unix.Close(r.fd) }

// Netns returns the nsfs device and inode of the netns the socket works in
// (SIOCGSKNS): the opener's own, known without a path lookup in /proc.
func (r *Conn) Netns() (dev, ino uint64, err error) { return SocketNetns(r.fd) }

// SocketNetns returns the nsfs device and inode of the netns the socket fd
// works in.
func SocketNetns(fd int) (dev, ino uint64, err error) {
	ns, err := socketNetnsFD(fd)
	if err != nil {
		return 0, 0, err
	}
	defer unix.Close(ns)
	var st unix.Stat_t
	if err := unix.Fstat(ns, &st); err != nil {
		return 0, 0, fmt.Errorf("stat netns of socket: %w", err)
	}
	return st.Dev, st.Ino, nil
}

// socketNetnsFD opens the netns the socket fd works in (SIOCGSKNS); the
// caller closes it.
func socketNetnsFD(fd int) (int, error) {
	ns, err := unix.IoctlRetInt(fd, unix.SIOCGSKNS)
	if err != nil {
		return -1, fmt.Errorf("netns of socket: %w", err)
	}
	return ns, nil
}

// message is a request being built: the netlink header, the message's fixed
// part, then attributes.
type message struct{ b []byte }

// newMessage starts a request of type typ with flags and the fixed part. A
// request that changes something also asks for an acknowledgement
// (unix.NLM_F_ACK in flags), which carries its result.
func newMessage(typ, flags uint16, fixed []byte) *message {
	m := &message{b: make([]byte, unix.SizeofNlMsghdr, 256)}
	binary.NativeEndian.PutUint16(m.b[4:], typ)
	binary.NativeEndian.PutUint16(m.b[6:], flags|unix.NLM_F_REQUEST)
	m.b = append(m.b, fixed...)
	return m
}

// attr appends attribute typ holding data, padded to 4 bytes.
func (m *message) attr(typ uint16, data []byte) {
	var h [unix.SizeofRtAttr]byte
	binary.NativeEndian.PutUint16(h[0:], uint16(unix.SizeofRtAttr+len(data)))
	binary.NativeEndian.PutUint16(h[2:], typ)
	m.b = append(append(m.b, h[:]...), data...)
	for len(m.b)%unix.NLA_ALIGNTO != 0 {
		m.b = append(m.b, 0)
	}
}

// nest appends attribute typ holding what body appends.
func (m *message) nest(typ uint16, body func()) {
	start := len(m.b)
	m.attr(typ, nil)
	body()
	binary.NativeEndian.PutUint16(m.b[start:], uint16(len(m.b)-start))
}

func u32(v uint32) []byte {
	return binary.NativeEndian.AppendUint32(nil, v)
}

func cString(s string) []byte { return append([]byte(s), 0) }

// ifInfo is an ifinfomsg of family for link index with flags changed.
func ifInfo(family uint8, index int, flags, change uint32) []byte {
	b := make([]byte, unix.SizeofIfInfomsg)
	b[0] = family
	binary.NativeEndian.PutUint32(b[4:], uint32(index))
	binary.NativeEndian.PutUint32(b[8:], flags)
	binary.NativeEndian.PutUint32(b[12:], change)
	return b
}

// do sends m and returns the kernel's answer to it: the body (after its
// netlink header) of the message the kernel sent back, nil when it sent
// none, or the kernel's error as a syscall.Errno, with the kernel's message
// when it gave one. A request asking for an acknowledgement is answered
// only by it, after any message the request had echoed.
func (r *Conn) do(m *message) ([]byte, error) {
	r.seq++
	binary.NativeEndian.PutUint32(m.b[0:], uint32(len(m.b)))
	binary.NativeEndian.PutUint32(m.b[8:], r.seq)
	acked := binary.NativeEndian.Uint16(m.b[6:])&unix.NLM_F_ACK != 0
	if err := unix.Sendto(r.fd, m.b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, err
	}
	var body []byte
	for {
		n, _, err := unix.Recvfrom(r.fd, r.buf, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		msgs, err := syscall.ParseNetlinkMessage(r.buf[:n])
		if err != nil {
			return nil, fmt.Errorf("parse rtnetlink reply: %w", err)
		}
		for _, msg := range msgs {
			switch {
			case msg.Header.Seq != r.seq:
				continue // not ours: nothing else is asked on this socket
			case msg.Header.Type == unix.NLMSG_ERROR:
				if err := ackError(msg); err != nil {
					return nil, err
				}
				return body, nil
			}
			body = append([]byte(nil), msg.Data...)
			if !acked {
				return body, nil
			}
		}
	}
}

// ackError is the error an NLMSG_ERROR message carries, nil for an
// acknowledgement.
func ackError(msg syscall.NetlinkMessage) error {
	if len(msg.Data) < 4 {
		return errors.New("short rtnetlink acknowledgement")
	}
	errno := -int32(binary.NativeEndian.Uint32(msg.Data))
	if errno == 0 {
		return nil
	}
	err := error(syscall.Errno(errno))
	if msg.Header.Flags&unix.NLM_F_ACK_TLVS == 0 || len(msg.Data) < 4+unix.SizeofNlMsghdr {
		return err
	}
	// After the error code, the (capped) request's header, then attributes.
	attrs := msg.Data[4+unix.SizeofNlMsghdr:]
	for len(attrs) >= unix.SizeofRtAttr {
		l := int(binary.NativeEndian.Uint16(attrs))
		if l < unix.SizeofRtAttr || l > len(attrs) {
			break
		}
		if binary.NativeEndian.Uint16(attrs[2:]) == unix.NLMSGERR_ATTR_MSG {
			return fmt.Errorf("%w: %s", err, unix.ByteSliceToString(attrs[unix.SizeofRtAttr:l]))
		}
		attrs = attrs[min(len(attrs), (l+unix.NLA_ALIGNTO-1)&^(unix.NLA_ALIGNTO-1)):]
	}
	return err
}

// getLink asks for one link by name (index 0) or index and decodes it as
// netlink does; a missing link is netlink.LinkNotFoundError, as there.
func (r *Conn) getLink(name string, index int) (netlink.Link, error) {
	body, err := r.linkReply(name, index)
	if err != nil {
		return nil, err
	}
	return decodeLink(body)
}

// IPv6Conf is what an ADD reads of a link's IPv6 settings, from the same
// reply as the link: the kernel nests them under IFLA_AF_SPEC, AF_INET6.
type IPv6Conf struct {
	On       bool  // the link has IPv6 settings (no IPv6 at all: none)
	AcceptRA int32 // net.ipv6.conf.LINK.accept_ra
}

// LinkIPv6ByName is LinkByName with the link's IPv6 settings: no read of
// /proc/sys, whose first path lookup in a process costs 20-60 µs.
func (r *Conn) LinkIPv6ByName(name string) (netlink.Link, IPv6Conf, error) {
	body, err := r.linkReply(name, 0)
	if err != nil {
		return nil, IPv6Conf{}, err
	}
	l, err := decodeLink(body)
	if err != nil {
		return nil, IPv6Conf{}, err
	}
	return l, decodeIPv6Conf(body[unix.SizeofIfInfomsg:]), nil
}

// linkReply asks for one link by name (index 0) or index and returns the
// reply's body; a missing link is netlink.LinkNotFoundError.
func (r *Conn) linkReply(name string, index int) ([]byte, error) {
	m := newMessage(unix.RTM_GETLINK, 0, ifInfo(unix.AF_UNSPEC, index, 0, 0))
	if name != "" {
		m.attr(unix.IFLA_IFNAME, cString(name))
	}
	m.attr(unix.IFLA_EXT_MASK, u32(rtextFilterVF)) // as netlink asks: no per-VF statistics
	body, err := r.do(m)
	if errors.Is(err, unix.ENODEV) {
		return nil, netlink.LinkNotFoundError{}
	}
	return body, err
}

// Constants of linux/netconf.h that x/sys/unix lacks.
const (
	netconfaIfindex    = 1  // NETCONFA_IFINDEX
	netconfaForwarding = 2  // NETCONFA_FORWARDING
	netconfIfindexAll  = -1 // NETCONFA_IFINDEX_ALL: the family's "all" settings
)

// Forwarding reports whether the socket's netns forwards the family:
// net.ipv4.ip_forward, or net.ipv6.conf.all.forwarding with v6. One
// request, where reading /proc/sys costs a path lookup that grows with the
// netns's links.
// Equivalent to: ip -4|-6 netconf show dev all
func (r *Conn) Forwarding(v6 bool) (bool, error) {
	family := byte(unix.AF_INET)
	if v6 {
		family = unix.AF_INET6
	}
	m := newMessage(unix.RTM_GETNETCONF, 0, []byte{family, 0, 0, 0}) // struct netconfmsg, padded
	all := int32(netconfIfindexAll)
	m.attr(netconfaIfindex, u32(uint32(all)))
	body, err := r.do(m)
	if err != nil {
		return false, fmt.Errorf("read forwarding (netconf): %w", err)
	}
	if len(body) >= 4 {
		for typ, v := range attrs(body[4:]) {
			if typ == netconfaForwarding && len(v) >= 4 {
				return u32At(v) != 0, nil
			}
		}
	}
	return false, errors.New("read forwarding (netconf): no forwarding attribute in the reply")
}

// decodeIPv6Conf reads accept_ra from a link's attributes: IFLA_AF_SPEC,
// then AF_INET6, then IFLA_INET6_CONF, an array of int32 by DEVCONF_*.
func decodeIPv6Conf(b []byte) IPv6Conf {
	for typ, v := range attrs(b) {
		if typ != unix.IFLA_AF_SPEC {
			continue
		}
		for fam, fv := range attrs(v) {
			if fam != unix.AF_INET6 {
				continue
			}
			for t, cv := range attrs(fv) {
				if t == unix.IFLA_INET6_CONF && len(cv) >= 4*(devconfAcceptRA+1) {
					return IPv6Conf{On: true, AcceptRA: int32(binary.NativeEndian.Uint32(cv[4*devconfAcceptRA:]))}
				}
			}
		}
	}
	return IPv6Conf{}
}

// decodeLink decodes the link message body into netlink's types, with only
// the fields an ADD reads (index, name, flags, MTU, MAC, master,
// promiscuity, peer index and netns id; for a bridge its VLAN filtering and default PVID): netlink's
// LinkDeserialize decodes every attribute, which cost about 0.05 ms and 10
// page faults a link in a fresh process.
func decodeLink(body []byte) (netlink.Link, error) {
	if len(body) < unix.SizeofIfInfomsg {
		return nil, errors.New("rtnetlink: no link in the reply")
	}
	la := netlink.NewLinkAttrs()
	la.Index = int(int32(binary.NativeEndian.Uint32(body[4:])))
	la.RawFlags = binary.NativeEndian.Uint32(body[8:])
	la.Flags = linkFlags(la.RawFlags)
	var kind string
	var data []byte
	for typ, v := range attrs(body[unix.SizeofIfInfomsg:]) {
		switch typ {
		case unix.IFLA_IFNAME:
			la.Name = unix.ByteSliceToString(v)
		case unix.IFLA_MTU:
			la.MTU = int(u32At(v))
		case unix.IFLA_ADDRESS:
			if slices.ContainsFunc(v, func(b byte) bool { return b != 0 }) { // as netlink: none when all zero
				la.HardwareAddr = net.HardwareAddr(append([]byte(nil), v...))
			}
		case unix.IFLA_MASTER:
			la.MasterIndex = int(u32At(v))
		case unix.IFLA_PROMISCUITY:
			la.Promisc = int(u32At(v))
		case unix.IFLA_LINK:
			la.ParentIndex = int(u32At(v))
		case unix.IFLA_LINK_NETNSID:
			la.NetNsID = int(int32(u32At(v)))
		case unix.IFLA_LINKINFO:
			for t, iv := range attrs(v) {
				switch t {
				case unix.IFLA_INFO_KIND:
					kind = unix.ByteSliceToString(iv)
				case unix.IFLA_INFO_DATA:
					data = iv
				}
			}
		}
	}
	switch kind {
	case "bridge":
		br := &netlink.Bridge{LinkAttrs: la}
		for t, v := range attrs(data) {
			switch {
			case t == unix.IFLA_BR_VLAN_FILTERING && len(v) >= 1:
				br.VlanFiltering = new(v[0] == 1)
			case t == unix.IFLA_BR_VLAN_DEFAULT_PVID && len(v) >= 2:
				br.VlanDefaultPVID = new(binary.NativeEndian.Uint16(v))
			}
		}
		return br, nil
	case "veth":
		return &netlink.Veth{LinkAttrs: la}, nil
	case "":
		return &netlink.Device{LinkAttrs: la}, nil
	}
	return &netlink.GenericLink{LinkAttrs: la, LinkType: kind}, nil
}

// attrs yields the attributes in b, type (without its flag bits) and value;
// it stops at a malformed one.
func attrs(b []byte) iter.Seq2[uint16, []byte] {
	return func(yield func(uint16, []byte) bool) {
		for len(b) >= unix.SizeofRtAttr {
			l := int(binary.NativeEndian.Uint16(b))
			if l < unix.SizeofRtAttr || l > len(b) {
				return
			}
			typ := binary.NativeEndian.Uint16(b[2:]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
			if !yield(typ, b[unix.SizeofRtAttr:l]) {
				return
			}
			b = b[min(len(b), (l+unix.NLA_ALIGNTO-1)&^(unix.NLA_ALIGNTO-1)):]
		}
	}
}

// u32At reads a native-endian u32 attribute value, 0 when it is short.
func u32At(v []byte) uint32 {
	if len(v) < 4 {
		return 0
	}
	return binary.NativeEndian.Uint32(v)
}

// linkFlags turns the kernel's IFF_ flags into net's, as netlink does.
func linkFlags(raw uint32) net.Flags {
	var f net.Flags
	for _, m := range []struct {
		iff  uint32
		flag net.Flags
	}{
		{unix.IFF_UP, net.FlagUp}, {unix.IFF_BROADCAST, net.FlagBroadcast}, {unix.IFF_LOOPBACK, net.FlagLoopback},
		{unix.IFF_POINTOPOINT, net.FlagPointToPoint}, {unix.IFF_MULTICAST, net.FlagMulticast}, {unix.IFF_RUNNING, net.FlagRunning},
	} {
		if raw&m.iff != 0 {
			f |= m.flag
		}
	}
	return f
}

// LinkByName returns the link called name.
//
// Equivalent to: ip link show NAME
func (r *Conn) LinkByName(name string) (netlink.Link, error) { return r.getLink(name, 0) }

// LinkByIndex returns the link with index i.
func (r *Conn) LinkByIndex(i int) (netlink.Link, error) { return r.getLink("", i) }

// AddVeth creates the pair v, its host end on the bridge with index master
// (0: none) and up when v's flags say so, its peer made directly in the
// netns with fd peerNS, in one request where netlink's LinkAdd makes three
// (the pair, a read-back for the index, then the master), and returns the
// host end's index and MAC (the kernel's pick when v has none): echoed by
// the kernel (Linux 6.3 on), else read back.
//
// Equivalent to: ip link add HOST [mtu M] [address MAC] master BR up type veth peer name IFNAME address PEERMAC netns POD
func (r *Conn) AddVeth(v *netlink.Veth, master int, peerNS int) (int, net.HardwareAddr, error) {
	var up uint32
	if v.Flags&net.FlagUp != 0 {
		up = unix.IFF_UP
	}
	m := newMessage(unix.RTM_NEWLINK, unix.NLM_F_ACK|unix.NLM_F_ECHO|unix.NLM_F_CREATE|unix.NLM_F_EXCL, ifInfo(unix.AF_UNSPEC, 0, up, up))
	m.attr(unix.IFLA_IFNAME, cString(v.Name))
	if v.MTU > 0 {
		m.attr(unix.IFLA_MTU, u32(uint32(v.MTU)))
	}
	if v.HardwareAddr != nil {
		m.attr(unix.IFLA_ADDRESS, v.HardwareAddr)
	}
	if master > 0 {
		m.attr(unix.IFLA_MASTER, u32(uint32(master)))
	}
	m.nest(unix.IFLA_LINKINFO, func() {
		m.attr(unix.IFLA_INFO_KIND, []byte("veth"))
		m.nest(unix.IFLA_INFO_DATA, func() {
			m.nest(vethInfoPeer, func() {
				m.b = append(m.b, ifInfo(unix.AF_UNSPEC, 0, 0, 0)...)
				m.attr(unix.IFLA_IFNAME, cString(v.PeerName))
				if v.MTU > 0 {
					m.attr(unix.IFLA_MTU, u32(uint32(v.MTU)))
				}
				if v.PeerHardwareAddr != nil {
					m.attr(unix.IFLA_ADDRESS, v.PeerHardwareAddr)
				}
				m.attr(unix.IFLA_NET_NS_FD, u32(uint32(peerNS)))
			})
		})
	})
	echo, err := r.do(m)
	if err != nil {
		return 0, nil, err
	}
	if len(echo) >= unix.SizeofIfInfomsg {
		for typ, a := range attrs(echo[unix.SizeofIfInfomsg:]) {
			if typ == unix.IFLA_ADDRESS {
				return int(int32(binary.NativeEndian.Uint32(echo[4:]))), net.HardwareAddr(append([]byte(nil), a...)), nil
			}
		}
	}
	l, err := r.LinkByName(v.Name)
	if err != nil {
		return 0, nil, fmt.Errorf("read back %s: %w", v.Name, err)
	}
	return l.Attrs().Index, l.Attrs().HardwareAddr, nil
}

// LinkSetUp sets link up.
//
// Equivalent to: ip link set LINK up
func (r *Conn) LinkSetUp(link netlink.Link) error {
	_, err := r.do(newMessage(unix.RTM_NEWLINK, unix.NLM_F_ACK, ifInfo(unix.AF_UNSPEC, link.Attrs().Index, unix.IFF_UP, unix.IFF_UP)))
	return err
}

// SetPromiscOn turns promiscuous mode on for link.
//
// Equivalent to: ip link set LINK promisc on
func (r *Conn) SetPromiscOn(link netlink.Link) error {
	_, err := r.do(newMessage(unix.RTM_NEWLINK, unix.NLM_F_ACK, ifInfo(unix.AF_UNSPEC, link.Attrs().Index, unix.IFF_PROMISC, unix.IFF_PROMISC)))
	return err
}

// SetPortFlags turns on the bridge-port options of port that are true:
// hairpin and isolation, in one request to the bridge, which (unlike the
// same change through the port's link) raises no link-state change.
//
// Equivalent to: bridge link set dev PORT [hairpin on] [isolated on]
func (r *Conn) SetPortFlags(port int, hairpin, isolated bool) error {
	if !hairpin && !isolated {
		return nil
	}
	m := newMessage(unix.RTM_SETLINK, unix.NLM_F_ACK, ifInfo(unix.AF_BRIDGE, port, 0, 0))
	m.nest(unix.IFLA_PROTINFO|unix.NLA_F_NESTED, func() {
		if hairpin {
			m.attr(unix.IFLA_BRPORT_MODE, []byte{1})
		}
		if isolated {
			m.attr(unix.IFLA_BRPORT_ISOLATED, []byte{1})
		}
	})
	_, err := r.do(m)
	return err
}

// AddrAdd adds addr to link, with a broadcast address for IPv4 as netlink
// computes it (ip's "brd +"), and addr's flags.
//
// Equivalent to: ip addr add ADDR [brd +] dev LINK [nodad]
func (r *Conn) AddrAdd(link netlink.Link, addr *netlink.Addr) error {
	ip, family := addrBytes(addr.IP)
	ones, bits := prefixLen(addr.IPNet)
	fixed := []byte{family, uint8(ones), uint8(addr.Flags), uint8(addr.Scope), 0, 0, 0, 0}
	binary.NativeEndian.PutUint32(fixed[4:], uint32(link.Attrs().Index))
	m := newMessage(unix.RTM_NEWADDR, unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_EXCL, fixed)
	m.attr(unix.IFA_LOCAL, ip)
	m.attr(unix.IFA_ADDRESS, ip)
	if addr.Flags > 0xff {
		m.attr(unix.IFA_FLAGS, u32(uint32(addr.Flags)))
	}
	if family == unix.AF_INET && bits-ones > 1 {
		brd := make([]byte, 4)
		for i := range brd {
			brd[i] = ip[i] | ^net.CIDRMask(ones, 32)[i]
		}
		m.attr(unix.IFA_BROADCAST, brd)
	}
	_, err := r.do(m)
	return err
}

// RouteAdd adds route with the fields the pod's routes and the agent's
// use: destination (nil: the default route of the gateway's family),
// gateway, interface, metric, table, scope, protocol (0: boot, as
// netlink's), MTU and advertised MSS.
//
// Equivalent to: ip route add DST [via GW] dev LINK [metric P] [table T] [scope S] [proto N] [mtu M] [advmss A]
func (r *Conn) RouteAdd(route *netlink.Route) error {
	return r.routeNew(route, unix.NLM_F_CREATE|unix.NLM_F_EXCL)
}

// RouteReplace adds route as RouteAdd does, or replaces the route to the
// same destination and metric.
//
// Equivalent to: ip route replace DST ...
func (r *Conn) RouteReplace(route *netlink.Route) error {
	return r.routeNew(route, unix.NLM_F_CREATE|unix.NLM_F_REPLACE)
}

func (r *Conn) routeNew(route *netlink.Route, flags uint16) error {
	proto := uint8(unix.RTPROT_BOOT)
	if route.Protocol > 0 {
		proto = uint8(route.Protocol)
	}
	m := routeMessage(unix.RTM_NEWROUTE, flags, route, proto, uint8(route.Scope))
	if route.MTU > 0 || route.AdvMSS > 0 {
		m.nest(unix.RTA_METRICS, func() {
			if route.MTU > 0 {
				m.attr(unix.RTAX_MTU, u32(uint32(route.MTU)))
			}
			if route.AdvMSS > 0 {
				m.attr(unix.RTAX_ADVMSS, u32(uint32(route.AdvMSS)))
			}
		})
	}
	_, err := r.do(m)
	return err
}

// routeMessage starts a route request of type typ for route: its family
// (from the destination, else the gateway), destination, TOS, table,
// gateway, interface and metric, with proto and scope.
func routeMessage(typ, flags uint16, route *netlink.Route, proto, scope uint8) *message {
	var dst []byte
	family, ones := uint8(route.Family), 0
	if route.Dst != nil {
		dst, family = addrBytes(route.Dst.IP)
		ones, _ = prefixLen(route.Dst)
	} else if route.Gw != nil {
		_, family = addrBytes(route.Gw)
	}
	table := uint8(unix.RT_TABLE_MAIN)
	if route.Table > 0 {
		table = uint8(unix.RT_TABLE_UNSPEC)
		if route.Table < 256 {
			table = uint8(route.Table)
		}
	}
	hdr := []byte{family, uint8(ones), 0, uint8(route.Tos), table, proto, scope, unix.RTN_UNICAST, 0, 0, 0, 0}
	binary.NativeEndian.PutUint32(hdr[8:], uint32(route.Flags)&unix.RTNH_F_ONLINK) // rtm_flags: onlink only
	m := newMessage(typ, unix.NLM_F_ACK|flags, hdr)
	if dst != nil {
		m.attr(unix.RTA_DST, dst)
	}
	if route.Gw != nil {
		gw, _ := addrBytes(route.Gw)
		m.attr(unix.RTA_GATEWAY, gw)
	}
	if route.LinkIndex > 0 {
		m.attr(unix.RTA_OIF, u32(uint32(route.LinkIndex)))
	}
	if route.Table >= 256 {
		m.attr(unix.RTA_TABLE, u32(uint32(route.Table)))
	}
	if route.Priority > 0 {
		m.attr(unix.RTA_PRIORITY, u32(uint32(route.Priority)))
	}
	return m
}

// NeighSet adds or replaces the neighbour entry n, as ip's "replace".
//
// Equivalent to: ip neigh replace IP [lladdr MAC] dev LINK nud STATE
func (r *Conn) NeighSet(n *netlink.Neigh) error {
	return r.neigh(unix.RTM_NEWNEIGH, unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_REPLACE, n)
}

// NeighDel deletes the neighbour entry n.
//
// Equivalent to: ip neigh del IP dev LINK
func (r *Conn) NeighDel(n *netlink.Neigh) error { return r.neigh(unix.RTM_DELNEIGH, unix.NLM_F_ACK, n) }

func (r *Conn) neigh(typ, flags uint16, n *netlink.Neigh) error {
	ip, family := addrBytes(n.IP)
	fixed := make([]byte, 12) // ndmsg
	fixed[0] = family
	binary.NativeEndian.PutUint32(fixed[4:], uint32(n.LinkIndex))
	binary.NativeEndian.PutUint16(fixed[8:], uint16(n.State))
	fixed[10] = uint8(n.Flags)
	m := newMessage(typ, flags, fixed)
	m.attr(unix.NDA_DST, ip)
	if n.HardwareAddr != nil {
		m.attr(unix.NDA_LLADDR, n.HardwareAddr)
	}
	_, err := r.do(m)
	return err
}

// addrBytes is ip as the kernel takes it, 4 bytes for IPv4, with its
// family.
func addrBytes(ip net.IP) ([]byte, uint8) {
	if v4 := ip.To4(); v4 != nil {
		return v4, unix.AF_INET
	}
	return ip.To16(), unix.AF_INET6
}

// prefixLen is n's prefix length and address size in bits, counting an
// IPv4 address's mask in IPv4 bits even when it is held in 16 bytes.
func prefixLen(n *net.IPNet) (ones, bits int) {
	ones, bits = n.Mask.Size()
	if n.IP.To4() != nil && bits == 128 {
		ones, bits = ones-96, 32
	}
	return ones, bits
}
