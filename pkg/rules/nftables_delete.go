package rules

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// delete removes network's chains, named by ours, in one batch, or the whole table when no
// other network has chains in it. When the table is absent it costs one
// netlink request, so callers may run it on every ADD of the other backend.
// The batch carries the generation read before the chains: if anyone
// committed in between (another network's first ADD among them), the
// kernel refuses it and delete reads again, at most maxWrites times.
func (b *NFTables) delete(ctx context.Context, c *nftables.Conn, ours []string, network string) error {
	for attempt := 0; ; attempt++ {
		err := ctx.Err()
		if attempt > 0 {
			err = Backoff(ctx, attempt)
		}
		if err != nil {
			return fmt.Errorf("delete nftables chains of network %q: %w", network, context.Cause(ctx))
		}
		if present, err := tablePresent(c); err != nil || !present {
			return err
		}
		err = b.deleteOnce(ctx, c, ours)
		if err == nil {
			return nil
		}
		// A stale generation, or a chain already gone: read again.
		retry := errors.Is(err, unix.ERESTART) || errors.Is(err, unix.ENOENT)
		if !retry || attempt == maxWrites-1 {
			return fmt.Errorf("delete nftables chains of network %q: %w", network, err)
		}
		b.logf("nftables: deleting chains of network %q (write %d): %v", network, attempt+1, err)
	}
}

// deleteOnce reads the generation and our table's chains, and commits the
// deletions they call for, guarded by that generation. The batch's socket
// lives for one attempt, so a refused batch leaves nothing queued for the
// next.
func (b *NFTables) deleteOnce(ctx context.Context, c *nftables.Conn, ours []string) error {
	gen, err := nftGeneration(b.netns)
	if err != nil {
		return err
	}
	all, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return fmt.Errorf("list nftables chains: %w", err)
	}
	msgs := deleteMsgs(all, ours)
	if len(msgs) == 0 {
		return nil
	}
	batch, err := nftDial(ctx, b.netns)
	if err != nil {
		return fmt.Errorf("open netlink socket: %w", err)
	}
	defer b.logClose(batch.Close)
	return nftCommit(batch, gen, msgs)
}

// deleteMsgs deletes the chains of ours present in our table, or the table
// itself when nothing else is left in it, an empty leftover included.
func deleteMsgs(all []*nftables.Chain, ours []string) []netlink.Message {
	var mine []string
	others := 0
	for _, ch := range all {
		switch {
		case ch.Table == nil || ch.Table.Name != NFTTable:
		case slices.Contains(ours, ch.Name):
			mine = append(mine, ch.Name)
		default:
			others++
		}
	}
	if others == 0 {
		return []netlink.Message{nftDelTable(NFTTable)}
	}
	var msgs []netlink.Message
	for _, name := range mine {
		msgs = append(msgs, nftDelChain(NFTTable, name))
	}
	return msgs
}

// tablePresent reports whether our table exists. A kernel without
// nftables cannot hold it, so that reports false too.
func tablePresent(c *nftables.Conn) (bool, error) {
	_, err := c.ListTableOfFamily(NFTTable, nftables.TableFamilyINet)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.ENOENT), NFTUnavailable(err):
		return false, nil
	}
	return false, fmt.Errorf("read nftables table inet %s: %w", NFTTable, err)
}

// NFTUnavailable tells the errors of a kernel without nftables (or without
// nfnetlink at all) from real failures. spoofchk shares it.
func NFTUnavailable(err error) bool {
	return errors.Is(err, unix.EPROTONOSUPPORT) || errors.Is(err, unix.EAFNOSUPPORT) || errors.Is(err, unix.EOPNOTSUPP)
}

// chainNames lists the names of chains.
func chainNames(chains []nftChain) []string {
	var names []string
	for _, c := range chains {
		names = append(names, c.chain.Name)
	}
	return names
}
