package iptables

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"syscall"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// listTables lists the nftables tables of the calling thread's netns, family
// and name only, with one netlink dump on a plain socket. It stands in for
// google/nftables' ListTables on the path of every ADD that names no
// backend: that connection joins the runtime's poller and decodes every
// attribute, which costs more than the rest of DefaultBackend.
//
// Equivalent to: nft list tables
func listTables() ([]*nftables.Table, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, fmt.Errorf("list nftables tables: netlink socket: %w", err)
	}
	defer unix.Close(fd)
	req := make([]byte, unix.SizeofNlMsghdr+4) // header + nfgenmsg{family AF_UNSPEC: all, version, res_id}
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_GETTABLE)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(req[8:], 1) // sequence number
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("list nftables tables: send: %w", err)
	}
	var tables []*nftables.Table
	buf := make([]byte, 32<<10) // a dump part is at most a page or two
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return nil, fmt.Errorf("list nftables tables: receive: %w", err)
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
			if len(m.Data) < 4 {
				return false, fmt.Errorf("list nftables tables: short error reply")
			}
			errno := int32(binary.NativeEndian.Uint32(m.Data))
			return false, fmt.Errorf("list nftables tables: %w", syscall.Errno(-errno))
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
	family := nftables.TableFamily(b[0])
	for a := b[4:]; len(a) >= 4; {
		l, typ := int(binary.NativeEndian.Uint16(a)), binary.NativeEndian.Uint16(a[2:])
		if l < 4 || l > len(a) {
			return nil
		}
		if typ&^unix.NLA_F_NESTED == unix.NFTA_TABLE_NAME {
			name, _, _ := bytes.Cut(a[4:l], []byte{0})
			return &nftables.Table{Family: family, Name: string(name)}
		}
		a = a[min((l+3)&^3, len(a)):] // attributes are 4-byte aligned
	}
	return nil
}
