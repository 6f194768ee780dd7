package rules

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"syscall"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/nodebridge/nodebridge/pkg/rtnl"
)

// The raw netfilter netlink code of the package, all of it. The ADD path
// asks nf_tables small things (the ruleset generation, the table names, one
// network's chains for the fingerprint) over a plain netfilter netlink
// socket: google/nftables' connection, and mdlayher/netlink's under it,
// join the runtime's poller and decode every attribute, which costs twenty
// times the question. Only the generation-guarded batch goes through
// mdlayher/netlink, which waits for its acknowledgements with ctx's
// deadline.

// nfSocket opens a netfilter netlink socket in the netns with fd netns, or
// in the calling thread's own when netns is 0. A socket stays in the netns
// it was opened in, so for another netns it is opened on a thread of its
// own that enters that netns and is never used again: a goroutine that
// ends while locked to its thread takes the thread with it.
func nfSocket(netns int) (int, error) {
	open := func() (int, error) {
		return unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	}
	if netns == 0 {
		return open()
	}
	return rtnl.InNetns(netns, open)
}

// nfQuery opens a netfilter netlink socket in the netns with fd netns (0:
// the calling thread's) and sends one nftables request of type msg for all
// families with flags (a dump or not). The caller reads the replies from
// the returned socket and closes it; what names the request in errors.
func nfQuery(netns int, what string, msg, flags uint16) (int, error) {
	fd, err := nfSocket(netns)
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

// nftGeneration asks nf_tables for the ruleset generation of the netns with
// fd netns (0: the calling thread's), which every committed batch advances.
//
// Equivalent to: nft list ruleset | head -0 (the GETGEN that starts every nft dump)
func nftGeneration(netns int) (uint32, error) {
	gen, _, err := nftGenerationOf(netns, false)
	return gen, err
}

// nftGenerationOf is nftGeneration, with the identity of the netns asked
// (its nsfs device and inode) when self is set: the query's socket names
// it (SIOCGSKNS), which costs no path lookup in /proc.
func nftGenerationOf(netns int, self bool) (gen uint32, id [2]uint64, err error) {
	const what = "nftables generation"
	fd, err := nfQuery(netns, what, unix.NFT_MSG_GETGEN, 0)
	if err != nil {
		return 0, id, err
	}
	defer unix.Close(fd)
	buf := make([]byte, 256)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return 0, id, fmt.Errorf("%s: receive: %w", what, err)
	}
	if gen, err = parseGeneration(buf[:n]); err != nil || !self {
		return gen, id, err
	}
	id[0], id[1], err = rtnl.SocketNetns(fd)
	return gen, id, err
}

// parseGeneration reads NFTA_GEN_ID from a NFT_MSG_NEWGEN reply.
func parseGeneration(b []byte) (uint32, error) {
	const hdr = unix.SizeofNlMsghdr + 4
	if len(b) < hdr {
		return 0, errors.New("nftables generation: short reply")
	}
	if typ := binary.NativeEndian.Uint16(b[4:]); typ == unix.NLMSG_ERROR {
		return 0, nlError("nftables generation", b[unix.SizeofNlMsghdr:])
	}
	if id := nfAttr(b[hdr:], unix.NFTA_GEN_ID); len(id) >= 4 {
		return binary.BigEndian.Uint32(id), nil
	}
	return 0, errors.New("nftables generation: no NFTA_GEN_ID in reply")
}

// listTables lists the nftables tables of the calling thread's netns, family
// and name only, with one netlink dump (see nfQuery). DefaultBackend asks
// it on the path of every ADD that names no backend.
//
// Equivalent to: nft list tables
func listTables() ([]*nftables.Table, error) {
	const what = "list nftables tables"
	fd, err := nfQuery(0, what, unix.NFT_MSG_GETTABLE, unix.NLM_F_DUMP)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var tables []*nftables.Table
	buf := make([]byte, 32<<10) // a dump part is at most a page or two
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return nil, fmt.Errorf("%s: receive: %w", what, err)
		}
		done, err := parseTables(buf[:n], &tables)
		if err != nil || done {
			return tables, err
		}
	}
}

// parseTables appends the tables of one dump part to tables and reports
// whether the dump ended.
func parseTables(b []byte, tables *[]*nftables.Table) (done bool, err error) {
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		return false, fmt.Errorf("list nftables tables: %w", err)
	}
	for _, m := range msgs {
		switch m.Header.Type {
		case unix.NLMSG_DONE:
			return true, nil
		case unix.NLMSG_ERROR:
			return false, nlError("list nftables tables", m.Data)
		case unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWTABLE:
			if t := parseTable(m.Data); t != nil {
				*tables = append(*tables, t)
			}
		}
	}
	return false, nil
}

// parseTable reads a NFT_MSG_NEWTABLE body: nfgenmsg, whose first byte is
// the family, then the attributes, of which only NFTA_TABLE_NAME is kept.
// It returns nil for a body without a name.
func parseTable(b []byte) *nftables.Table {
	if len(b) < 4 {
		return nil
	}
	name := nfAttr(b[4:], unix.NFTA_TABLE_NAME)
	if name == nil {
		return nil
	}
	name, _, _ = bytes.Cut(name, []byte{0})
	return &nftables.Table{Family: nftables.TableFamily(b[0]), Name: string(name)}
}

// A batch that the kernel applies only if the ruleset is still at a
// generation read before (see nftGeneration), which google/nftables does
// not offer. DeleteNetwork needs it to delete the shared table only while
// it is empty: without the check, another network's chains created between
// our read and our write would go down with the table. nft itself guards
// its transactions the same way.

// nftDial opens a netfilter netlink socket in the netns with fd netns, or in
// the caller's own when netns is 0, with ctx's deadline on its reads.
func nftDial(ctx context.Context, netns int) (*netlink.Conn, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: netns})
	if err != nil {
		return nil, err
	}
	if d, ok := ctx.Deadline(); ok {
		if err := c.SetReadDeadline(d); err != nil {
			return nil, errors.Join(err, c.Close())
		}
	}
	return c, nil
}

// nftCommit sends msgs as one batch that the kernel applies whole, and only
// while the ruleset is at generation gen; then it waits for the
// acknowledgement of every message. A batch refused for a stale generation
// fails with an error wrapping unix.ERESTART. The caller closes c after an
// error, which drops any acknowledgement still queued.
func nftCommit(c *netlink.Conn, gen uint32, msgs []netlink.Message) error {
	genID, err := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.NFNL_BATCH_GENID, Data: binary.BigEndian.AppendUint32(nil, gen)},
	})
	if err != nil {
		return fmt.Errorf("encode nftables batch: %w", err)
	}
	batch := []netlink.Message{{
		Header: netlink.Header{Type: unix.NFNL_MSG_BATCH_BEGIN, Flags: netlink.Request},
		Data:   append(nfgenmsg(unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES), genID...),
	}}
	for _, m := range msgs {
		m.Header.Flags = netlink.Request | netlink.Acknowledge
		batch = append(batch, m)
	}
	batch = append(batch, netlink.Message{
		Header: netlink.Header{Type: unix.NFNL_MSG_BATCH_END, Flags: netlink.Request},
		Data:   nfgenmsg(unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES),
	})
	if _, err := c.SendMessages(batch); err != nil {
		return fmt.Errorf("send nftables batch: %w", err)
	}
	for acked := 0; acked < len(msgs); {
		replies, err := c.Receive()
		if err != nil {
			return fmt.Errorf("commit nftables batch: %w", err)
		}
		acked += len(replies)
	}
	return nil
}

// nftDelChain is the message deleting chain of table (family inet).
// Equivalent to: nft delete chain inet TABLE CHAIN
func nftDelChain(table, chain string) netlink.Message {
	return nftMsg(unix.NFT_MSG_DELCHAIN, []netlink.Attribute{
		{Type: unix.NFTA_CHAIN_TABLE, Data: cString(table)},
		{Type: unix.NFTA_CHAIN_NAME, Data: cString(chain)},
	})
}

// nftDelTable is the message deleting table (family inet) and all it holds.
// Equivalent to: nft delete table inet TABLE
func nftDelTable(table string) netlink.Message {
	return nftMsg(unix.NFT_MSG_DELTABLE, []netlink.Attribute{
		{Type: unix.NFTA_TABLE_NAME, Data: cString(table)},
	})
}

// nftMsg is an inet-family nftables message. Attributes of plain strings
// cannot fail to encode, so the error is not returned.
func nftMsg(typ int, attrs []netlink.Attribute) netlink.Message {
	data, _ := netlink.MarshalAttributes(attrs) // fails only on an attribute over 64 KiB
	return netlink.Message{
		Header: netlink.Header{Type: nftMsgType(typ)},
		Data:   append(nfgenmsg(unix.NFPROTO_INET, 0), data...),
	}
}

// nftMsgType is the netlink message type of an nftables message.
func nftMsgType(msg int) netlink.HeaderType {
	return netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | msg)
}

// nfgenmsg is the header every nfnetlink message starts with: the family,
// the version, and a big-endian resource id (the subsystem, in a batch).
func nfgenmsg(family byte, resID uint16) []byte {
	return binary.BigEndian.AppendUint16([]byte{family, unix.NFNETLINK_V0}, resID)
}

// cString is s as netlink carries strings, NUL-terminated.
func cString(s string) []byte {
	return append([]byte(s), 0)
}

// nfRequest sends one nftables request for family and hands each reply's
// attributes to each; a missing table or chain (ENOENT) is written to d
// as such rather than failing.
func nfRequest(fd int, seq uint32, msg, flags uint16, family byte, attrs []byte, each func([]byte), d hash.Hash) error {
	if err := nfSend(fd, seq, msg, flags, family, attrs); err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return fmt.Errorf("receive: %w", err)
		}
		done, err := nfReplies(buf[:n], seq, flags&unix.NLM_F_DUMP == 0, each, d)
		if done || err != nil {
			return err
		}
	}
}

// nfReplies walks one datagram of replies to request seq. It reports
// done at NLMSG_DONE, an error reply, or after the one answer of a
// request that is not a dump.
func nfReplies(b []byte, seq uint32, single bool, each func([]byte), d hash.Hash) (bool, error) {
	for len(b) >= unix.SizeofNlMsghdr {
		l := int(binary.NativeEndian.Uint32(b))
		if l < unix.SizeofNlMsghdr || l > len(b) {
			return true, errors.New("malformed netlink reply")
		}
		typ, msgSeq, body := binary.NativeEndian.Uint16(b[4:]), binary.NativeEndian.Uint32(b[8:]), b[unix.SizeofNlMsghdr:l]
		b = b[min((l+3)&^3, len(b)):]
		if msgSeq != seq {
			continue // a late answer to an earlier request
		}
		switch typ {
		case unix.NLMSG_DONE:
			return true, nil
		case unix.NLMSG_ERROR:
			err := nlError("nftables request", body)
			if errors.Is(err, syscall.ENOENT) {
				d.Write([]byte(" absent"))
				return true, nil
			}
			if len(body) >= 4 && binary.NativeEndian.Uint32(body) == 0 {
				return true, nil // an acknowledgement
			}
			return true, err
		}
		if len(body) >= 4 {
			each(body[4:]) // past nfgenmsg
		}
		if single {
			return true, nil
		}
	}
	return false, nil
}
