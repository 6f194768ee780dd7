package iptables

import (
	"encoding/binary"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// The ADD path asks nf_tables two small things (the ruleset generation, the
// table names) over a plain netfilter netlink socket: google/nftables'
// connection joins the runtime's poller and decodes every attribute, which
// costs more than the question.

// nfQuery opens a netfilter netlink socket in the calling thread's netns and
// sends one nftables request of type msg for all families with flags (a
// dump or not). The caller reads the replies from the returned socket and
// closes it; what names the request in errors.
func nfQuery(what string, msg, flags uint16) (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return -1, fmt.Errorf("%s: netlink socket: %w", what, err)
	}
	req := make([]byte, unix.SizeofNlMsghdr+4) // header + nfgenmsg{family AF_UNSPEC: all, version, res_id}
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], unix.NFNL_SUBSYS_NFTABLES<<8|msg)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST|flags)
	binary.NativeEndian.PutUint32(req[8:], 1) // sequence number
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("%s: send: %w", what, err)
	}
	return fd, nil
}

// nlError is the errno of an NLMSG_ERROR body.
func nlError(what string, body []byte) error {
	if len(body) < 4 {
		return fmt.Errorf("%s: short error reply", what)
	}
	errno := int32(binary.NativeEndian.Uint32(body))
	return fmt.Errorf("%s: %w", what, syscall.Errno(-errno))
}

// nfAttr returns the payload of the first attribute of type typ in a (a
// message body past its nfgenmsg), nil when there is none or a is malformed.
func nfAttr(a []byte, typ uint16) []byte {
	for len(a) >= 4 {
		l, t := int(binary.NativeEndian.Uint16(a)), binary.NativeEndian.Uint16(a[2:])
		if l < 4 || l > len(a) {
			return nil
		}
		if t&^unix.NLA_F_NESTED == typ {
			return a[4:l]
		}
		a = a[min((l+3)&^3, len(a)):] // attributes are 4-byte aligned
	}
	return nil
}
