package rules

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/nftables"
)

// NFTables is the Backend that programs nftables in process, over netlink,
// with github.com/google/nftables: no nft binary and no exec. When a
// network's rules are in place, EnsureNetwork costs a few netlink requests
// and writes nothing; a write is one batch, which the kernel applies whole.
//
// The rules live in table inet nodebridge, in two base chains per network
// (see nftChain), and NFTables touches nothing else. An accept there only
// lets a packet pass those chains: it must also pass every other base chain
// on the hook, so where iptables' FORWARD chain drops, the network's
// forwarded traffic also needs iptables' accept. Select adds that, and the
// removal of the iptables backend's leftovers (see crossbackend.go).
type NFTables struct {
	logf func(format string, args ...any)
	// netns is an fd of the netns to program, 0 for the caller's own; tests
	// set it.
	netns int
}

var _ Backend = (*NFTables)(nil)

// NewNFTables returns an nftables backend that logs through logf; nil logf
// discards.
func NewNFTables(logf func(format string, args ...any)) *NFTables {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &NFTables{logf: logf}
}

// conn opens one netlink socket for all the requests of one call.
func (b *NFTables) conn() (*nftables.Conn, error) {
	c, err := nftables.New(nftables.AsLasting(), nftables.WithNetNSFd(b.netns))
	if err != nil {
		return nil, fmt.Errorf("open nftables netlink socket: %w", err)
	}
	return c, nil
}

// logClose closes a socket: once the work is done a close error changes
// nothing in the kernel, so it is logged rather than returned.
func (b *NFTables) logClose(closeFn func() error) {
	if err := closeFn(); err != nil {
		b.logf("nftables: close netlink socket: %v", err)
	}
}

// EnsureNetwork makes n's chains exactly as rendered when they differ, in
// one batch that also creates the table, then reads them back. A network
// without subnets has no rules to ensure, as with the iptables backend.
// Equivalent to: nft -f - <<< 'add table inet nodebridge; add chain ...;
// flush chain ...; add rule ...'
func (b *NFTables) EnsureNetwork(ctx context.Context, n Network) error {
	if !hasSubnets(n) {
		return nil
	}
	c, err := b.conn()
	if err != nil {
		return fmt.Errorf("nftables rules of network %q: %w", n.Name, err)
	}
	defer b.logClose(c.CloseLasting)
	return b.ensure(ctx, c, nftChains(n), n.Name)
}

// ensure writes want when the read shows it differs, and reads again, up to
// maxWrites times. Concurrent writers of one network cannot duplicate
// rules, since each batch flushes the chain it fills, but one may fail on a
// chain another just replaced: the next read settles it.
func (b *NFTables) ensure(ctx context.Context, c *nftables.Conn, want []nftChain, network string) error {
	var werr error
	for attempt := 0; ; attempt++ {
		err := ctx.Err()
		if attempt > 0 {
			err = Backoff(ctx, attempt)
		}
		if err != nil {
			return fmt.Errorf("nftables rules of network %q: %w", network, context.Cause(ctx))
		}
		st, err := readNFT(c, want, network)
		if err != nil {
			return err
		}
		diff := nftDifferences(want, st, network)
		if len(diff) == 0 {
			return nil
		}
		if attempt == maxWrites {
			if werr != nil {
				return werr
			}
			return fmt.Errorf("nftables rules of network %q still differ after %d writes: %w", network, maxWrites, errors.Join(diff...))
		}
		b.logf("nftables: writing rules of network %q (write %d): %v", network, attempt+1, errors.Join(diff...))
		werr = writeNFT(c, want, st, network)
	}
}

// readNFT lists the chains of our table and the rules of those of want.
func readNFT(c *nftables.Conn, want []nftChain, network string) (nftState, error) {
	all, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nftState{}, fmt.Errorf("list nftables chains for network %q: %w", network, err)
	}
	st := nftState{chains: map[string]*nftables.Chain{}, rules: map[string][]*nftables.Rule{}}
	for _, ch := range all {
		if ch.Table != nil && ch.Table.Name == NFTTable {
			st.chains[ch.Name] = ch
		}
	}
	for _, w := range want {
		if _, ok := st.chains[w.chain.Name]; !ok {
			continue
		}
		rules, err := c.GetRules(w.chain.Table, w.chain)
		if err != nil {
			return nftState{}, fmt.Errorf("list rules of nftables chain inet %s %s of network %q: %w", NFTTable, w.chain.Name, network, err)
		}
		st.rules[w.chain.Name] = rules
	}
	return st, nil
}

// writeNFT queues the table and every chain of want that st shows
// differing, each flushed and refilled, and sends them as one batch.
func writeNFT(c *nftables.Conn, want []nftChain, st nftState, network string) error {
	comment := nftComment(network)
	c.AddTable(want[0].chain.Table)
	for _, w := range want {
		if !nftChainDiffers(w, st, comment) {
			continue
		}
		if got, ok := st.chains[w.chain.Name]; ok && ChainHeader(got) != ChainHeader(w.chain) {
			c.DelChain(w.chain) // a base chain's type, hook and priority cannot change in place
		}
		c.AddChain(w.chain)
		c.FlushChain(w.chain) // another writer may have filled it since our read
		for _, r := range w.rules {
			c.AddRule(&nftables.Rule{Table: w.chain.Table, Chain: w.chain, Exprs: r.exprs, UserData: comment})
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("write nftables chains of network %q: %w", network, err)
	}
	return nil
}

// CheckNetwork reports, as errors wrapping ErrMissing, every chain or rule
// of n that is absent or differs from the rendered ones.
func (b *NFTables) CheckNetwork(ctx context.Context, n Network) error {
	if !hasSubnets(n) {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("nftables rules of network %q: %w", n.Name, context.Cause(ctx))
	}
	c, err := b.conn()
	if err != nil {
		return fmt.Errorf("nftables rules of network %q: %w", n.Name, err)
	}
	defer b.logClose(c.CloseLasting)
	want := nftChains(n)
	st, err := readNFT(c, want, n.Name)
	if err != nil {
		return err
	}
	return errors.Join(nftDifferences(want, st, n.Name)...)
}

// DeleteNetwork removes n's chains whatever n.Subnets says. Absent chains
// are not an error, nor is a kernel without nftables, which cannot hold any.
// Equivalent to: nft delete chain inet nodebridge post-HASH (and fwd-HASH),
// or nft delete table inet nodebridge when no other network has chains.
func (b *NFTables) DeleteNetwork(ctx context.Context, n Network) error {
	c, err := b.conn()
	if NFTUnavailable(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete rules of network %q: %w", n.Name, err)
	}
	defer b.logClose(c.CloseLasting)
	return b.delete(ctx, c, chainNames(nftChains(Network{Name: n.Name})), n.Name)
}
