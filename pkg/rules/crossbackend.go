package rules

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// What one backend needs of the other lives here, and only here: NFTables
// and IPTables each touch their own rules alone, and Select returns one of
// them wrapped in a primary that adds the rest.
//
//   - nftPrimary, the nftables backend, keeps a network's iptables rules to
//     the nftables backend's share of iptables: per family, no NB-POST-<hash>
//     (the nftables table masquerades), and NB-FWD-<hash> exactly when the
//     network has subnets of the family and iptables' filter FORWARD chain
//     drops forwarded traffic (see savedTable.forwardDrops), since an
//     nftables accept cannot overrule iptables' drop. Only an iptables-save
//     shows that exactly, so it is read only when it may find something to
//     do: with iptables-nft, netlink shows first, without exec, whether the
//     family's FORWARD chain drops or any chain of the network is there;
//     with iptables-legacy nothing but the save can tell. The ADDs of bridge
//     run EnsureNetwork only when the nftables generation moved (see
//     Stamper).
//   - iptPrimary, the iptables backend, deletes a network's nftables chains
//     after each EnsureNetwork and in DeleteNetwork, which costs one netlink
//     request while table inet nodebridge does not exist.

// nftPrimary is the nftables backend with its share of iptables.
type nftPrimary struct {
	nft *NFTables
	ipt *IPTables
	// variant tells how iptables keeps its rules (iptablesVariant); tests
	// swap it.
	variant func() string
}

// iptPrimary is the iptables backend on a node where the nftables backend
// may have left chains.
type iptPrimary struct {
	ipt *IPTables
	nft *NFTables
}

var (
	_ Fingerprinter = (*nftPrimary)(nil)
	_ Fingerprinter = (*iptPrimary)(nil)
)

// newNFTPrimary is the nftables backend as Select returns it, its share of
// iptables run in mode.
func newNFTPrimary(logf func(format string, args ...any), mode IPTablesMode) *nftPrimary {
	ipt := newIPTables(logf, mode)
	return &nftPrimary{nft: NewNFTables(logf), ipt: ipt, variant: ipt.variant}
}

// newIPTPrimary is the iptables backend as Select returns it, run in mode.
func newIPTPrimary(logf func(format string, args ...any), mode IPTablesMode) *iptPrimary {
	return &iptPrimary{ipt: newIPTables(logf, mode), nft: NewNFTables(logf)}
}

// EnsureNetwork installs n's iptables rules first, so that n's pods are
// never without rules, then deletes n's nftables chains.
func (b *iptPrimary) EnsureNetwork(ctx context.Context, n Network) error {
	if err := b.ipt.EnsureNetwork(ctx, n); err != nil {
		return err
	}
	return b.nft.DeleteNetwork(ctx, n)
}

// DeleteNetwork deletes n's rules from both backends.
func (b *iptPrimary) DeleteNetwork(ctx context.Context, n Network) error {
	return errors.Join(b.ipt.DeleteNetwork(ctx, n), b.nft.DeleteNetwork(ctx, n))
}

// CheckNetwork checks n's iptables rules.
func (b *iptPrimary) CheckNetwork(ctx context.Context, n Network) error {
	return b.ipt.CheckNetwork(ctx, n)
}

// Stamp is the iptables backend's stamp.
func (b *iptPrimary) Stamp(ctx context.Context) (string, error) {
	return b.ipt.Stamp(ctx)
}

// Fingerprint is the iptables backend's fingerprint.
func (b *iptPrimary) Fingerprint(ctx context.Context, n Network) (string, error) {
	return b.ipt.Fingerprint(ctx, n)
}

// EnsureNetwork makes n's nftables chains as rendered, then brings each
// family's iptables rules of n to the nftables backend's share, one
// restore per family that differs. A network without subnets has no rules
// to ensure. A host without iptables cannot drop in iptables, so it is
// skipped.
// Equivalent to: nft -f - (see NFTables.EnsureNetwork); iptables-save;
// iptables-restore --noflush -w 5 (per family).
func (b *nftPrimary) EnsureNetwork(ctx context.Context, n Network) error {
	if !hasSubnets(n) {
		return nil
	}
	if err := b.nft.EnsureNetwork(ctx, n); err != nil {
		return err
	}
	return b.ensureShares(ctx, networkShares(n))
}

// CheckNetwork reports, as errors wrapping ErrMissing, how n's nftables
// chains and each family of n's iptables rules depart from what
// EnsureNetwork makes, iptables' FORWARD accept included where iptables
// drops forwarded traffic.
func (b *nftPrimary) CheckNetwork(ctx context.Context, n Network) error {
	if !hasSubnets(n) {
		return nil
	}
	err := b.nft.CheckNetwork(ctx, n)
	if ctx.Err() != nil {
		return err
	}
	return errors.Join(err, b.checkShares(ctx, networkShares(n)))
}

// DeleteNetwork removes n's nftables chains, then n's iptables chains in
// each family where they may be, this backend's FORWARD accept or the
// iptables backend's leftovers, whatever n.Subnets says. On a kernel
// without nftables only iptables-save can tell what iptables holds.
// Equivalent to: nft delete chain inet nodebridge ... (see
// NFTables.DeleteNetwork); iptables-save; iptables-restore --noflush -w 5
// (per family).
func (b *nftPrimary) DeleteNetwork(ctx context.Context, n Network) error {
	err := b.nft.DeleteNetwork(ctx, n)
	return errors.Join(err, b.deleteShares(ctx, networkShares(Network{Name: n.Name})))
}

// iptShare is one family of what the nftables backend keeps in iptables of
// a set of chains: rs, rendered as the iptables backend would, less its nat
// chains, and its filter chains only where iptables drops forwarded
// traffic and the family has prefixes (see forwardOnly).
type iptShare struct {
	name  string  // the network, in messages
	table string  // the table to save: "" for every table
	rs    Ruleset // rendered with the family's prefixes
	has   bool    // the family has prefixes
}

// networkShares are n's shares, IPv4 then IPv6.
func networkShares(n Network) [2]iptShare {
	var out [2]iptShare
	for i, v6 := range []bool{false, true} {
		subnets := familySubnets(n.Subnets, v6)
		out[i] = iptShare{name: n.Name, rs: render(n.Name, v6, subnets, nil), has: len(subnets) > 0}
	}
	return out
}

// want is what the family must hold given its saved state.
func (s iptShare) want(st saved) Ruleset {
	return forwardOnly(s.rs, s.has && st["filter"].forwardDrops())
}

// ensureShares brings each family to its share, skipping those netlink
// shows need no save and those without iptables.
func (b *nftPrimary) ensureShares(ctx context.Context, shares [2]iptShare) error {
	c, err := b.nftConn(shares[0].name)
	if err != nil || c == nil {
		return err
	}
	defer b.nft.logClose(c.CloseLasting)
	for _, s := range shares {
		look, err := b.mayNeedSave(c, s.rs, s.has)
		if err != nil {
			return fmt.Errorf("%s rules of network %q: %w", familyName(s.rs.IPv6), s.name, err)
		}
		if !look {
			continue
		}
		err = b.ipt.ensure(ctx, s.rs.IPv6, s.table, s.want, s.name)
		if errors.Is(err, exec.ErrNotFound) {
			b.nft.logf("%s: not installed, leaving network %q to nftables alone: %v", familyName(s.rs.IPv6), s.name, err)
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// checkShares reports how each family departs from its share.
func (b *nftPrimary) checkShares(ctx context.Context, shares [2]iptShare) error {
	c, err := b.nftConn(shares[0].name)
	if err != nil || c == nil {
		return err
	}
	defer b.nft.logClose(c.CloseLasting)
	var errs []error
	for _, s := range shares {
		look, err := b.mayNeedSave(c, s.rs, s.has)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s rules of network %q: %w", familyName(s.rs.IPv6), s.name, err))
			continue
		}
		if look {
			errs = append(errs, checkShare(ctx, b.ipt, s)...)
		}
	}
	return errors.Join(errs...)
}

// deleteShares removes the chains of each family's share, where they may
// be.
func (b *nftPrimary) deleteShares(ctx context.Context, shares [2]iptShare) error {
	c, err := b.nftConn(shares[0].name)
	if err != nil {
		return err
	}
	if c != nil {
		defer b.nft.logClose(c.CloseLasting)
	}
	for _, s := range shares {
		look, err := b.mayNeedSave(c, s.rs, false)
		if err != nil {
			return fmt.Errorf("%s rules of network %q: %w", familyName(s.rs.IPv6), s.name, err)
		}
		if !look {
			continue
		}
		err = b.ipt.delete(ctx, s.rs, s.name)
		if err != nil && !errors.Is(err, exec.ErrNotFound) {
			return err
		}
	}
	return nil
}

// Stamp is the nftables backend's stamp. It is empty where
// iptables-legacy may hold the drop that the iptables FORWARD accept
// answers, since legacy changes do not move it.
func (b *nftPrimary) Stamp(ctx context.Context) (string, error) {
	if b.variant() == variantLegacy {
		return "", nil
	}
	return b.nft.Stamp(ctx)
}

// Fingerprint is the nftables backend's fingerprint, which also covers n's
// iptables-nft chains. Empty where the stamp is (see nftPrimary.Stamp).
func (b *nftPrimary) Fingerprint(ctx context.Context, n Network) (string, error) {
	if b.variant() == variantLegacy {
		return "", nil
	}
	return b.nft.Fingerprint(ctx, n)
}

// nftConn opens the netlink socket through which mayNeedSave sees
// iptables-nft's chains, in the netns the nftables backend programs. On a
// kernel without nftables it returns nil and no error.
func (b *nftPrimary) nftConn(network string) (*nftables.Conn, error) {
	c, err := b.nft.conn()
	if NFTUnavailable(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("iptables rules of network %q: %w", network, err)
	}
	return c, nil
}

// ensureForward brings one family's rules of n to the nftables backend's
// share of iptables: one save, and one restore if they differ.
func ensureForward(ctx context.Context, t *IPTables, n Network, v6 bool) error {
	s := networkShares(n)[familyIndex(v6)]
	return t.ensure(ctx, v6, s.table, s.want, n.Name)
}

// checkForward lists how one family's rules of n depart from the nftables
// backend's share of iptables.
func checkForward(ctx context.Context, t *IPTables, n Network, v6 bool) []error {
	return checkShare(ctx, t, networkShares(n)[familyIndex(v6)])
}

// checkShare lists how one family departs from its share.
func checkShare(ctx context.Context, t *IPTables, s iptShare) []error {
	st, err := t.save(ctx, s.rs.IPv6, s.table, s.name)
	if err != nil {
		return []error{err}
	}
	return differences(s.want(st), st, s.name)
}

// familyIndex is 0 for IPv4, 1 for IPv6.
func familyIndex(v6 bool) int {
	if v6 {
		return 1
	}
	return 0
}

// forwardOnly is rs as the nftables backend leaves it in iptables: no nat
// chain, whose masquerade the nftables table does, and the filter chain
// only when accept is true, that is where iptables drops forwarded traffic.
func forwardOnly(rs Ruleset, accept bool) Ruleset {
	out := Ruleset{IPv6: rs.IPv6}
	for _, c := range rs.Chains {
		if accept && c.Table == "filter" {
			out.Chains = append(out.Chains, c)
		} else {
			out.Absent = append(out.Absent, c)
		}
	}
	return out
}

// mayNeedSave reports whether rs's family of iptables may hold one of rs's
// chains, or, when drops matters, drop forwarded traffic: only then is an
// iptables-save worth its exec. It asks netlink what iptables-nft keeps in
// nftables (the family's chains, and the rules of filter FORWARD unless
// its policy answers); it cannot see iptables-legacy's rules, so with
// legacy the answer is always yes, and without iptables always no. A nil
// c (a kernel without nftables) leaves the question to iptables-save.
func (b *nftPrimary) mayNeedSave(c *nftables.Conn, rs Ruleset, drops bool) (bool, error) {
	switch variant := b.variant(); {
	case variant == variantNone:
		return false, nil
	case variant == variantLegacy, c == nil:
		return true, nil
	}
	family, familyWord := nftables.TableFamilyIPv4, "ip"
	if rs.IPv6 {
		family, familyWord = nftables.TableFamilyIPv6, "ip6"
	}
	chains, err := c.ListChainsOfTableFamily(family)
	if err != nil {
		return false, fmt.Errorf("list nftables chains of family %s: %w", familyWord, err)
	}
	ours := func(ch *nftables.Chain) bool {
		return slices.ContainsFunc(slices.Concat(rs.Chains, rs.Absent), func(c Chain) bool {
			return c.Table == ch.Table.Name && c.Name == ch.Name
		})
	}
	var forward *nftables.Chain
	for _, ch := range chains {
		switch {
		case ch.Table == nil:
		case ours(ch):
			return true, nil
		case ch.Table.Name == "filter" && ch.Name == "FORWARD":
			forward = ch
		}
	}
	if !drops || forward == nil {
		return false, nil
	}
	if forward.Policy != nil && *forward.Policy == nftables.ChainPolicyDrop {
		return true, nil
	}
	rules, err := c.GetRules(forward.Table, forward)
	if err != nil {
		return false, fmt.Errorf("list rules of nftables chain %s filter FORWARD: %w", familyWord, err)
	}
	return slices.ContainsFunc(rules, dropsPacket), nil
}

// dropsPacket reports whether an iptables-nft rule ends in DROP (a drop
// verdict) or REJECT (the xtables target, or nft's own reject).
func dropsPacket(r *nftables.Rule) bool {
	for _, e := range r.Exprs {
		switch e := e.(type) {
		case *expr.Verdict:
			if e.Kind == expr.VerdictDrop {
				return true
			}
		case *expr.Reject:
			return true
		case *expr.Target:
			if e.Name == "REJECT" {
				return true
			}
		}
	}
	return false
}
