package rtnl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ErrDumpInterrupted is a dump the kernel marked inconsistent: something
// it lists changed while it was read. Ask again.
var ErrDumpInterrupted = errors.New("rtnetlink dump interrupted by a change: ask again")

// OpenIn opens a Conn in the netns with descriptor ns, from a thread that
// enters it and is then thrown away: the socket stays in that netns.
func OpenIn(ns int) (*Conn, error) { return InNetns(ns, Open) }

// InNetns runs f on a thread that enters the netns with descriptor ns and
// is then thrown away: a socket f opens stays in that netns, and nothing
// has to switch back.
func InNetns[T any](ns int, f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := unix.Setns(ns, unix.CLONE_NEWNET); err != nil {
			var zero T
			done <- result{zero, fmt.Errorf("enter netns: %w", err)}
			return
		}
		v, err := f()
		done <- result{v, err}
	}()
	r := <-done
	return r.v, r.err
}

// dump sends m, a dump request, and calls each with the body (after its
// netlink header) of every message of the answer, in order. The body is
// the Conn's receive buffer, which the next read overwrites: each copies
// what it keeps.
func (r *Conn) dump(m *message, each func(body []byte) error) error {
	r.seq++
	binary.NativeEndian.PutUint16(m.b[6:], binary.NativeEndian.Uint16(m.b[6:])|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(m.b[0:], uint32(len(m.b)))
	binary.NativeEndian.PutUint32(m.b[8:], r.seq)
	if err := unix.Sendto(r.fd, m.b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	var interrupted bool
	var eachErr error
	for {
		n, _, err := unix.Recvfrom(r.fd, r.buf, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		msgs, err := syscall.ParseNetlinkMessage(r.buf[:n])
		if err != nil {
			return fmt.Errorf("parse rtnetlink dump: %w", err)
		}
		for _, msg := range msgs {
			if msg.Header.Seq != r.seq {
				continue // not ours: nothing else is asked on this socket
			}
			interrupted = interrupted || msg.Header.Flags&unix.NLM_F_DUMP_INTR != 0
			switch msg.Header.Type {
			case unix.NLMSG_DONE:
				if interrupted {
					return ErrDumpInterrupted
				}
				return eachErr
			case unix.NLMSG_ERROR:
				if err := ackError(msg); err != nil {
					return err
				}
				return eachErr
			}
			if eachErr == nil { // read the dump to its end even so
				eachErr = each(msg.Data)
			}
		}
	}
}

// Links lists every link, each decoded as LinkByName decodes one.
//
// Equivalent to: ip link show
func (r *Conn) Links() ([]netlink.Link, error) {
	m := newMessage(unix.RTM_GETLINK, 0, ifInfo(unix.AF_UNSPEC, 0, 0, 0))
	m.attr(unix.IFLA_EXT_MASK, u32(rtextFilterVF)) // as netlink asks: no per-VF statistics
	var links []netlink.Link
	err := r.dump(m, func(body []byte) error {
		l, err := decodeLink(body)
		if err == nil {
			links = append(links, l)
		}
		return err
	})
	return links, err
}

// Addr is an address as Addrs lists it.
type Addr struct {
	Prefix    netip.Prefix // the local address with its prefix length, unmasked
	LinkIndex int
}

// Addrs lists the addresses of every link, both families. The address is
// the local one (IFA_LOCAL, which differs from IFA_ADDRESS, the peer, on a
// point-to-point link), else IFA_ADDRESS, as netlink's AddrList reads it.
//
// Equivalent to: ip addr show
func (r *Conn) Addrs() ([]Addr, error) {
	m := newMessage(unix.RTM_GETADDR, 0, make([]byte, unix.SizeofIfAddrmsg)) // AF_UNSPEC: both families
	var out []Addr
	err := r.dump(m, func(body []byte) error {
		a, ok := decodeAddr(body)
		if ok {
			out = append(out, a)
		}
		return nil
	})
	return out, err
}

// decodeAddr decodes one RTM_NEWADDR body; false for a malformed one.
func decodeAddr(body []byte) (Addr, bool) {
	if len(body) < unix.SizeofIfAddrmsg {
		return Addr{}, false
	}
	bits, index := int(body[1]), int(binary.NativeEndian.Uint32(body[4:]))
	var address, local []byte
	for typ, v := range attrs(body[unix.SizeofIfAddrmsg:]) {
		switch typ {
		case unix.IFA_ADDRESS:
			address = v
		case unix.IFA_LOCAL:
			local = v
		}
	}
	if local != nil {
		address = local
	}
	ip, ok := netip.AddrFromSlice(address)
	if !ok || bits > ip.BitLen() {
		return Addr{}, false
	}
	return Addr{Prefix: netip.PrefixFrom(ip, bits), LinkIndex: index}, true
}

// Routes lists the routes of table (unix.RT_TABLE_MAIN, say), both
// families, as netlink's RouteListFiltered with a table filter does
// (cached clones left out), decoded with the fields the agent reads and
// deletes by: family, destination, gateway, preferred source, interfaces,
// metric, table, protocol, scope, type, flags, TOS and the next hops of a
// multipath route (their interface, gateway, weight and flags).
//
// Equivalent to: ip route show table T; ip -6 route show table T
func (r *Conn) Routes(table int) ([]netlink.Route, error) {
	m := newMessage(unix.RTM_GETROUTE, 0, make([]byte, unix.SizeofRtMsg)) // AF_UNSPEC: both families
	var out []netlink.Route
	err := r.dump(m, func(body []byte) error {
		rt, ok := decodeRoute(body)
		if ok && rt.Flags&unix.RTM_F_CLONED == 0 && rt.Table == table {
			out = append(out, rt)
		}
		return nil
	})
	return out, err
}

// decodeRoute decodes one RTM_NEWROUTE body; false for a malformed one.
func decodeRoute(body []byte) (netlink.Route, bool) {
	if len(body) < unix.SizeofRtMsg {
		return netlink.Route{}, false
	}
	rt := netlink.Route{
		Family: int(body[0]), Tos: int(body[3]), Table: int(body[4]), Protocol: netlink.RouteProtocol(body[5]),
		Scope: netlink.Scope(body[6]), Type: int(body[7]), Flags: int(binary.NativeEndian.Uint32(body[8:])),
	}
	dstLen := int(body[1])
	for typ, v := range attrs(body[unix.SizeofRtMsg:]) {
		switch typ {
		case unix.RTA_DST:
			rt.Dst = &net.IPNet{IP: clone(v), Mask: net.CIDRMask(dstLen, 8*len(v))}
		case unix.RTA_GATEWAY:
			rt.Gw = clone(v)
		case unix.RTA_PREFSRC:
			rt.Src = clone(v)
		case unix.RTA_OIF:
			rt.LinkIndex = int(u32At(v))
		case unix.RTA_IIF:
			rt.ILinkIndex = int(u32At(v))
		case unix.RTA_PRIORITY:
			rt.Priority = int(u32At(v))
		case unix.RTA_TABLE:
			rt.Table = int(u32At(v))
		case unix.RTA_MULTIPATH:
			hops, ok := decodeNexthops(v)
			if !ok {
				return rt, false
			}
			rt.MultiPath = hops
		}
	}
	if rt.Dst == nil { // a default route: 0.0.0.0/0 or ::/0, as netlink (and ip) give it
		switch rt.Family {
		case unix.AF_INET:
			rt.Dst = &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 8*net.IPv4len)}
		case unix.AF_INET6:
			rt.Dst = &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 8*net.IPv6len)}
		}
	}
	return rt, true
}

// decodeNexthops decodes RTA_MULTIPATH: rtnexthop structs, each followed
// by its attributes.
func decodeNexthops(b []byte) ([]*netlink.NexthopInfo, bool) {
	var hops []*netlink.NexthopInfo
	for len(b) > 0 {
		if len(b) < unix.SizeofRtNexthop {
			return nil, false
		}
		l := int(binary.NativeEndian.Uint16(b))
		if l < unix.SizeofRtNexthop || l > len(b) {
			return nil, false
		}
		nh := &netlink.NexthopInfo{Flags: int(b[2]), Hops: int(b[3]), LinkIndex: int(binary.NativeEndian.Uint32(b[4:]))}
		for typ, v := range attrs(b[unix.SizeofRtNexthop:l]) {
			if typ == unix.RTA_GATEWAY {
				nh.Gw = clone(v)
			}
		}
		hops = append(hops, nh)
		b = b[min(len(b), (l+unix.NLA_ALIGNTO-1)&^(unix.NLA_ALIGNTO-1)):]
	}
	return hops, true
}

// RouteDel deletes the route matching route's destination, gateway,
// interface, metric, table, TOS and protocol (0: any), of any scope.
//
// Equivalent to: ip route del DST [via GW] [dev LINK] [metric P] [table T] [proto N]
func (r *Conn) RouteDel(route *netlink.Route) error {
	_, err := r.do(routeMessage(unix.RTM_DELROUTE, 0, route, uint8(route.Protocol), unix.RT_SCOPE_NOWHERE))
	return err
}

// clone copies an address out of the receive buffer.
func clone(b []byte) net.IP { return append(net.IP(nil), b...) }
