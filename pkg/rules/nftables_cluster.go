package rules

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// nftClusterChains renders the accepts as one base chain, cluster-fwd
// (filter, forward, filter), IPv4 then IPv6: accept forwarding from each
// CIDR, then to each. As with a network's fwd-<hash>, they change no
// verdict of their own (see crossbackend.go), and count. With no CIDRs the
// chain has no rules, which is all DeleteCluster needs.
func nftClusterChains(c Cluster) []nftChain {
	t := &nftables.Table{Name: NFTTable, Family: nftables.TableFamilyINet}
	fwd := nftChain{chain: &nftables.Chain{Name: nftClusterChain, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter}}
	for _, v6 := range []bool{false, true} {
		for _, field := range []string{"saddr", "daddr"} {
			for _, p := range familySubnets(c.CIDRs, v6) {
				fwd.rules = append(fwd.rules, prefixRule(p, field, "accept", &expr.Counter{}, &expr.Verdict{Kind: expr.VerdictAccept}))
			}
		}
	}
	return []nftChain{fwd}
}

// EnsureCluster makes chain cluster-fwd hold exactly the accepts of c's
// CIDRs, in one batch when it differs; with no CIDRs it deletes it.
// Equivalent to: nft -f - <<< 'add table inet nodebridge; add chain inet
// nodebridge cluster-fwd ...; flush chain ...; add rule ...'
func (b *NFTables) EnsureCluster(ctx context.Context, c Cluster) error {
	if len(c.CIDRs) == 0 {
		return b.DeleteCluster(ctx, c)
	}
	conn, err := b.conn()
	if err != nil {
		return fmt.Errorf("nftables accepts of network %q: %w", c.Name, err)
	}
	defer b.logClose(conn.CloseLasting)
	return b.ensure(ctx, conn, nftClusterChains(c), c.Name)
}

// CheckCluster reports, as errors wrapping ErrMissing, how chain
// cluster-fwd departs from EnsureCluster's.
func (b *NFTables) CheckCluster(ctx context.Context, c Cluster) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("nftables accepts of network %q: %w", c.Name, context.Cause(ctx))
	}
	conn, err := b.conn()
	if err != nil {
		return fmt.Errorf("nftables accepts of network %q: %w", c.Name, err)
	}
	defer b.logClose(conn.CloseLasting)
	want := nftClusterChains(c)
	st, err := readNFT(conn, want, c.Name)
	if err != nil {
		return err
	}
	if len(c.CIDRs) == 0 {
		if _, ok := st.chains[nftClusterChain]; ok {
			return finding(fmt.Sprintf("nftables chain inet %s %s of network %q: unexpected chain", NFTTable, nftClusterChain, c.Name))
		}
		return nil
	}
	return errors.Join(nftDifferences(want, st, c.Name)...)
}

// DeleteCluster removes chain cluster-fwd, or the whole table when nothing
// else is in it. Absent, or a kernel without nftables, is not an error.
// Equivalent to: nft delete chain inet nodebridge cluster-fwd.
func (b *NFTables) DeleteCluster(ctx context.Context, c Cluster) error {
	conn, err := b.conn()
	if NFTUnavailable(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete nftables accepts of network %q: %w", c.Name, err)
	}
	defer b.logClose(conn.CloseLasting)
	return b.delete(ctx, conn, []string{nftClusterChain}, c.Name)
}

// FingerprintCluster digests the same objects as IPTables'
// FingerprintCluster. Empty where the stamp is (see NFTables.Stamp).
func (b *NFTables) FingerprintCluster(ctx context.Context, c Cluster) (string, error) {
	if b.netns != 0 {
		return "", nil
	}
	return fingerprint(c.Name, clusterScope())
}
