package rules

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The two nftables requests google/nftables does not offer, sent on a raw
// netlink socket: reading the ruleset generation, and committing a batch
// that the kernel applies only if the ruleset is still at a generation read
// before. DeleteNetwork needs the pair to delete the shared table only while
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

// readGenID returns the ruleset generation, which every committed batch
// advances.
func readGenID(c *netlink.Conn) (uint32, error) {
	replies, err := c.Execute(netlink.Message{
		Header: netlink.Header{Type: nftMsgType(unix.NFT_MSG_GETGEN), Flags: netlink.Request},
		Data:   nfgenmsg(unix.AF_UNSPEC, 0),
	})
	if err != nil {
		return 0, fmt.Errorf("read nftables generation: %w", err)
	}
	for _, m := range replies {
		if m.Header.Type != nftMsgType(unix.NFT_MSG_NEWGEN) || len(m.Data) < 4 {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			return 0, fmt.Errorf("decode nftables generation: %w", err)
		}
		ad.ByteOrder = binary.BigEndian
		for ad.Next() {
			if ad.Type() == unix.NFTA_GEN_ID {
				return ad.Uint32(), nil
			}
		}
	}
	return 0, errors.New("read nftables generation: no generation in the reply")
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
