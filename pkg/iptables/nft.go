package iptables

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/nftables"
)

// NFTables is the Backend that programs nftables in process, over netlink,
// with github.com/google/nftables: no nft binary and no exec. When a
// network's rules are in place, EnsureNetwork costs three netlink requests
// and writes nothing; a write is one batch, which the kernel applies whole.
//
// The rules live in table inet nodebridge, in two base chains per network
// (see nftChain). An accept there only lets a packet pass those chains: it
// must also pass every other base chain on the hook, so a FORWARD policy of
// DROP in iptables, or a drop in another nftables table, still drops pod
// traffic. DefaultBackend picks iptables on hosts that use iptables for that
// reason, and EnsureNetwork logs a warning when it finds such a policy.
type NFTables struct {
	logf func(format string, args ...any)
	// netns is an fd of the netns to program, 0 for the caller's own; tests
	// set it.
	netns int
	// replaces is the backend whose rules of a network this one takes over
	// (see Select): they are deleted whenever this backend writes or deletes
	// the network's rules. Nil for none.
	replaces Backend
}

var _ Backend = (*NFTables)(nil)

// NewNFTables returns an nftables backend that logs through logf; nil logf
// discards. It replaces no other backend: Select sets that up.
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
// one batch that also creates the table, then reads them back. Having
// written, it deletes n's rules of the replaced backend. A network without
// subnets has no rules to ensure, as with the iptables backend.
// Equivalent to: nft -f - <<< 'add table inet nodebridge; add chain ...;
// flush chain ...; add rule ...'
func (b *NFTables) EnsureNetwork(ctx context.Context, n Network) error {
	if len(familySubnets(n.Subnets, false))+len(familySubnets(n.Subnets, true)) == 0 {
		return nil
	}
	c, err := b.conn()
	if err != nil {
		return fmt.Errorf("nftables rules of network %q: %w", n.Name, err)
	}
	defer b.logClose(c.CloseLasting)
	wrote, err := b.ensure(ctx, c, nftChains(n.Name, n.Subnets), n.Name)
	if err != nil || !wrote {
		return err
	}
	b.warnForwardDrop(c, n)
	if b.replaces != nil {
		if err := b.replaces.DeleteNetwork(ctx, Network{Name: n.Name}); err != nil {
			return fmt.Errorf("remove rules of network %q left by the previous backend: %w", n.Name, err)
		}
	}
	return nil
}

// ensure writes want when the read shows it differs, and reads again, up to
// maxWrites times; it reports whether it wrote. Concurrent writers of one
// network cannot duplicate rules, since each batch flushes the chain it
// fills, but one may fail on a chain another just replaced: the next read
// settles it.
func (b *NFTables) ensure(ctx context.Context, c *nftables.Conn, want []nftChain, network string) (bool, error) {
	var werr error
	wrote := false
	for attempt := 0; ; attempt++ {
		err := ctx.Err()
		if attempt > 0 {
			err = backoff(ctx, attempt)
		}
		if err != nil {
			return wrote, fmt.Errorf("nftables rules of network %q: %w", network, context.Cause(ctx))
		}
		st, err := readNFT(c, want, network)
		if err != nil {
			return wrote, err
		}
		diff := nftDifferences(want, st, network)
		if len(diff) == 0 {
			return wrote, nil
		}
		if attempt == maxWrites {
			if werr != nil {
				return wrote, werr
			}
			return wrote, fmt.Errorf("nftables rules of network %q still differ after %d writes: %w", network, maxWrites, errors.Join(diff...))
		}
		b.logf("nftables: writing rules of network %q (write %d): %v", network, attempt+1, errors.Join(diff...))
		werr = writeNFT(c, want, st, network)
		wrote = wrote || werr == nil
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
		if got, ok := st.chains[w.chain.Name]; ok && chainHeader(got) != chainHeader(w.chain) {
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

// warnForwardDrop logs when iptables' FORWARD chain (as iptables-nft keeps
// it) drops by default in a family of n: our accept cannot override it.
func (b *NFTables) warnForwardDrop(c *nftables.Conn, n Network) {
	for _, v6 := range []bool{false, true} {
		family := nftables.TableFamilyIPv4
		if v6 {
			family = nftables.TableFamilyIPv6
		}
		if len(familySubnets(n.Subnets, v6)) == 0 {
			continue
		}
		ch, err := c.ListChain(&nftables.Table{Name: "filter", Family: family}, "FORWARD")
		if err == nil && ch.Policy != nil && *ch.Policy == nftables.ChainPolicyDrop {
			b.logf("nftables: %s FORWARD policy is DROP, which nftables accept rules cannot override: "+
				"network %q needs ipMasqBackend iptables to forward pod traffic", familyName(v6), n.Name)
		}
	}
}

// CheckNetwork reports, as errors wrapping ErrMissing, every chain or rule
// of n that is absent or differs from the rendered ones.
func (b *NFTables) CheckNetwork(ctx context.Context, n Network) error {
	if len(familySubnets(n.Subnets, false))+len(familySubnets(n.Subnets, true)) == 0 {
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
	want := nftChains(n.Name, n.Subnets)
	st, err := readNFT(c, want, n.Name)
	if err != nil {
		return err
	}
	return errors.Join(nftDifferences(want, st, n.Name)...)
}

// DeleteNetwork removes n's chains whatever n.Subnets says, then n's rules
// of the replaced backend. Absent chains are not an error, nor is a kernel
// without nftables, which cannot hold any.
// Equivalent to: nft delete chain inet nodebridge post-HASH (and fwd-HASH),
// or nft delete table inet nodebridge when no other network has chains.
func (b *NFTables) DeleteNetwork(ctx context.Context, n Network) error {
	err := b.delete(ctx, n.Name)
	if b.replaces != nil {
		err = errors.Join(err, b.replaces.DeleteNetwork(ctx, Network{Name: n.Name}))
	}
	return err
}
