package rules

import (
	"bytes"
	"fmt"
	"syscall"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// listTables lists the nftables tables of the calling thread's netns, family
// and name only, with one netlink dump (see nfQuery). DefaultBackend asks
// it on the path of every ADD that names no backend.
//
// Equivalent to: nft list tables
func listTables() ([]*nftables.Table, error) {
	const what = "list nftables tables"
	fd, err := nfQuery(what, unix.NFT_MSG_GETTABLE, unix.NLM_F_DUMP)
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
