package rules

import (
	"context"
	"errors"
)

// The cluster accepts cross backends as a network's rules do (see
// crossbackend.go): the iptables backend removes the nftables chain, and
// the nftables backend keeps NB-AGENT-FWD in iptables exactly where
// iptables' FORWARD drops, since its own accept cannot overrule that drop.

// clusterShares are c's iptables shares, IPv4 then IPv6: the filter table
// alone.
func clusterShares(c Cluster) [2]iptShare {
	var out [2]iptShare
	for i, v6 := range []bool{false, true} {
		cidrs := familySubnets(c.CIDRs, v6)
		out[i] = iptShare{name: c.Name, table: "filter", rs: renderCluster(v6, cidrs), has: len(cidrs) > 0}
	}
	return out
}

// EnsureCluster installs the iptables accepts first, so that pods are never
// without them, then deletes the nftables chain. A family skipped for want
// of its tools (see NotInstalledError) does not stop the deletion.
func (b *iptPrimary) EnsureCluster(ctx context.Context, c Cluster) error {
	err := b.ipt.EnsureCluster(ctx, c)
	var missing *NotInstalledError
	if err != nil && !errors.As(err, &missing) {
		return err
	}
	return errors.Join(err, b.nft.DeleteCluster(ctx, c))
}

// DeleteCluster deletes the accepts from both backends.
func (b *iptPrimary) DeleteCluster(ctx context.Context, c Cluster) error {
	return errors.Join(b.ipt.DeleteCluster(ctx, c), b.nft.DeleteCluster(ctx, c))
}

// CheckCluster checks the iptables accepts.
func (b *iptPrimary) CheckCluster(ctx context.Context, c Cluster) error {
	return b.ipt.CheckCluster(ctx, c)
}

// FingerprintCluster is the iptables backend's.
func (b *iptPrimary) FingerprintCluster(ctx context.Context, c Cluster) (string, error) {
	return b.ipt.FingerprintCluster(ctx, c)
}

// EnsureCluster makes chain cluster-fwd as rendered, then brings each
// family's NB-AGENT-FWD to the nftables backend's share: present where
// iptables drops forwarded traffic, absent elsewhere. Without iptables
// nothing can drop there, and nothing is exec'd.
// Equivalent to: nft -f - (see NFTables.EnsureCluster); iptables-save -t
// filter; iptables-restore --noflush -w 5 (per family, when needed).
func (b *nftPrimary) EnsureCluster(ctx context.Context, c Cluster) error {
	if err := b.nft.EnsureCluster(ctx, c); err != nil {
		return err
	}
	return b.ensureShares(ctx, clusterShares(c))
}

// CheckCluster reports how chain cluster-fwd and each family's share of
// iptables depart from EnsureCluster's.
func (b *nftPrimary) CheckCluster(ctx context.Context, c Cluster) error {
	err := b.nft.CheckCluster(ctx, c)
	if ctx.Err() != nil {
		return err
	}
	return errors.Join(err, b.checkShares(ctx, clusterShares(c)))
}

// DeleteCluster removes chain cluster-fwd, then NB-AGENT-FWD in each
// family where it may be.
func (b *nftPrimary) DeleteCluster(ctx context.Context, c Cluster) error {
	err := b.nft.DeleteCluster(ctx, c)
	return errors.Join(err, b.deleteShares(ctx, clusterShares(Cluster{Name: c.Name})))
}

// FingerprintCluster is the nftables backend's, which also covers
// iptables-nft's chains; empty where the stamp is (see nftPrimary.Stamp).
func (b *nftPrimary) FingerprintCluster(ctx context.Context, c Cluster) (string, error) {
	if b.variant() == variantLegacy {
		return "", nil
	}
	return b.nft.FingerprintCluster(ctx, c)
}
