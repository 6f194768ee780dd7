package rules

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
	if err := nfSend(fd, 1, msg, flags, unix.AF_UNSPEC, nil); err != nil { // AF_UNSPEC: every family
		unix.Close(fd)
		return -1, fmt.Errorf("%s: %w", what, err)
	}
	return fd, nil
}

// nfSend sends one nftables request of type msg for family on fd: a
// netlink header with flags and seq, the nfgenmsg, then attrs.
func nfSend(fd int, seq uint32, msg, flags uint16, family byte, attrs []byte) error {
	req := make([]byte, unix.SizeofNlMsghdr+4, unix.SizeofNlMsghdr+4+len(attrs))
	binary.NativeEndian.PutUint16(req[4:], unix.NFNL_SUBSYS_NFTABLES<<8|msg)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST|flags)
	binary.NativeEndian.PutUint32(req[8:], seq)
	req[unix.SizeofNlMsghdr] = family
	req = append(req, attrs...)
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return nil
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
	var found []byte
	nfEach(a, func(t uint16, payload []byte) bool {
		if t&^unix.NLA_F_NESTED == typ {
			found = payload
			return false
		}
		return true
	})
	return found
}

// nfAttrs splits a nested attribute's payload into its attributes'
// payloads.
func nfAttrs(a []byte) [][]byte {
	var out [][]byte
	nfEach(a, func(_ uint16, payload []byte) bool {
		out = append(out, payload)
		return true
	})
	return out
}

// nfEach calls f with each attribute's type and payload in a, in order,
// until f returns false or a ends or is malformed.
func nfEach(a []byte, f func(typ uint16, payload []byte) bool) {
	for len(a) >= 4 {
		l, t := int(binary.NativeEndian.Uint16(a)), binary.NativeEndian.Uint16(a[2:])
		if l < 4 || l > len(a) || !f(t, a[4:l]) {
			return
		}
		a = a[min((l+3)&^3, len(a)):] // attributes are 4-byte aligned
	}
}

// nlAttr encodes one netlink attribute, padded to 4 bytes.
func nlAttr(typ uint16, payload []byte) []byte {
	b := make([]byte, 4, 4+len(payload)+3)
	binary.NativeEndian.PutUint16(b, uint16(4+len(payload)))
	binary.NativeEndian.PutUint16(b[2:], typ)
	b = append(b, payload...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}
