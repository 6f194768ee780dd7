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

// The nftables backend's share of iptables. Per family, a network's
// iptables rules must be: no NB-POST-<hash> (the nftables table
// masquerades), and NB-FWD-<hash> exactly when the network has subnets of
// the family and iptables' filter FORWARD chain drops forwarded traffic
// (see savedTable.forwardDrops); otherwise no NB-FWD-<hash> either. Only an
// iptables-save shows that exactly, so it is read only when it may find
// something to do: with iptables-nft, netlink shows first, without exec,
// whether the family's FORWARD chain drops or any chain of the network is
// there; with iptables-legacy nothing but the save can tell.

// ensureIPTables brings each family's iptables rules of n to the above,
// one restore per family that differs. A host without iptables cannot
// drop in iptables, so it is skipped.
// Equivalent to: iptables-save; iptables-restore --noflush -w 5 (per family).
func (b *NFTables) ensureIPTables(ctx context.Context, c *nftables.Conn, n Network) error {
	if b.ipt == nil {
		return nil
	}
	for _, v6 := range []bool{false, true} {
		subnets := familySubnets(n.Subnets, v6)
		look, err := b.mayNeedSave(c, n.Name, v6, len(subnets) > 0)
		if err != nil {
			return fmt.Errorf("%s rules of network %q: %w", familyName(v6), n.Name, err)
		}
		if !look {
			continue
		}
		err = b.ipt.ensureForward(ctx, n, v6)
		if errors.Is(err, exec.ErrNotFound) {
			b.logf("%s: not installed, leaving network %q to nftables alone: %v", familyName(v6), n.Name, err)
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// checkIPTables reports how each family of n's iptables rules departs from
// the above, as ErrMissing findings.
func (b *NFTables) checkIPTables(ctx context.Context, c *nftables.Conn, n Network) []error {
	if b.ipt == nil {
		return nil
	}
	var errs []error
	for _, v6 := range []bool{false, true} {
		subnets := familySubnets(n.Subnets, v6)
		look, err := b.mayNeedSave(c, n.Name, v6, len(subnets) > 0)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s rules of network %q: %w", familyName(v6), n.Name, err))
			continue
		}
		if !look {
			continue
		}
		errs = append(errs, b.ipt.checkForward(ctx, n, v6)...)
	}
	return errs
}

// ensureForward brings one family's rules of n to what the nftables
// backend needs of iptables: one save, and one restore if they differ.
func (t *IPTables) ensureForward(ctx context.Context, n Network, v6 bool) error {
	return t.ensure(ctx, v6, forwardWant(n, v6), n.Name)
}

// checkForward lists how one family's rules of n depart from what the
// nftables backend needs of iptables.
func (t *IPTables) checkForward(ctx context.Context, n Network, v6 bool) []error {
	st, err := t.save(ctx, v6, n.Name)
	if err != nil {
		return []error{err}
	}
	return differences(forwardWant(n, v6)(st), st, n.Name)
}

// forwardWant renders n's iptables rules of one family as the nftables
// backend needs them, given whether the saved filter FORWARD chain drops.
func forwardWant(n Network, v6 bool) wantFunc {
	subnets := familySubnets(n.Subnets, v6)
	rs := render(n.Name, v6, subnets, nil)
	return func(st saved) Ruleset {
		return forwardOnly(rs, len(subnets) > 0 && st["filter"].forwardDrops())
	}
}

// deleteIPTables removes the network's chains from iptables in each family
// where they may be, whoever left them. A nil c (a kernel without
// nftables) leaves the question to iptables-save.
// Equivalent to: iptables-save; iptables-restore --noflush -w 5 (per family).
func (b *NFTables) deleteIPTables(ctx context.Context, c *nftables.Conn, network string) error {
	if b.ipt == nil {
		return nil
	}
	for _, v6 := range []bool{false, true} {
		look := c == nil
		if c != nil {
			var err error
			if look, err = b.mayNeedSave(c, network, v6, false); err != nil {
				return fmt.Errorf("%s rules of network %q: %w", familyName(v6), network, err)
			}
		}
		if !look {
			continue
		}
		err := b.ipt.delete(ctx, render(network, v6, nil, nil), network)
		if err != nil && !errors.Is(err, exec.ErrNotFound) {
			return err
		}
	}
	return nil
}

// mayNeedSave reports whether one family's iptables may hold a chain of
// network, or, when drops matters, drop forwarded traffic: only then is an
// iptables-save worth its exec. It asks netlink what iptables-nft keeps in
// nftables (the family's chains, and the rules of filter FORWARD unless
// its policy answers); it cannot see iptables-legacy's rules, so with
// legacy the answer is always yes, and without iptables always no.
func (b *NFTables) mayNeedSave(c *nftables.Conn, network string, v6, drops bool) (bool, error) {
	switch b.variant() {
	case variantNone:
		return false, nil
	case variantLegacy:
		return true, nil
	}
	family, familyWord := nftables.TableFamilyIPv4, "ip"
	if v6 {
		family, familyWord = nftables.TableFamilyIPv6, "ip6"
	}
	chains, err := c.ListChainsOfTableFamily(family)
	if err != nil {
		return false, fmt.Errorf("list nftables chains of family %s: %w", familyWord, err)
	}
	hash := chainHash(network)
	var forward *nftables.Chain
	for _, ch := range chains {
		switch {
		case ch.Table == nil:
		case ch.Table.Name == "nat" && ch.Name == "NB-POST-"+hash, ch.Table.Name == "filter" && ch.Name == "NB-FWD-"+hash:
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
