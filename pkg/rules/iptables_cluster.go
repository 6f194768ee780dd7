package rules

import (
	"context"
	"errors"
	"net/netip"
	"os/exec"
)

// renderCluster builds the accepts of one family in chain NB-AGENT-FWD,
// which FORWARD jumps to near its top (below kube-proxy's jumps, see
// insertAt): a -s and a -d ACCEPT per CIDR, then an ACCEPT of connections
// this node DNATed (dnatAccept). They carry no comment: the chain is the
// agent's alone.
func renderCluster(v6 bool, cidrs []netip.Prefix) Ruleset {
	c := Chain{Table: "filter", Name: clusterChain, Parent: "FORWARD", Jump: "-A FORWARD -j " + clusterChain, Insert: true}
	for _, flag := range []string{"-s", "-d"} {
		for _, p := range cidrs {
			c.Rules = append(c.Rules, "-A "+clusterChain+" "+addrMatch(flag, p)+"-j ACCEPT")
		}
	}
	if len(cidrs) > 0 {
		c.Rules = append(c.Rules, "-A "+clusterChain+" "+dnatAccept)
	}
	return Ruleset{IPv6: v6, Chains: []Chain{c}}
}

// dnatAccept accepts, both ways, a connection this node DNATed: a Service's
// traffic that kube-proxy sends on to an endpoint outside the cluster CIDR
// (a hostNetwork pod's node, the API server), which a FORWARD policy of DROP
// would otherwise stop. kube-proxy's iptables mode accepts it itself (its
// masquerade mark, in KUBE-FORWARD); its nftables mode cannot, since an
// accept in its own table does not outvote iptables' drop. Found by the
// upstream e2e spec "Networking Granular Checks: Services should function
// for service endpoints using hostNetwork" under kube-proxy nftables.
const dnatAccept = "-m conntrack --ctstate DNAT -j ACCEPT"

// EnsureCluster makes each family's chain hold exactly the accepts of its
// CIDRs, declaration and rules in one restore, so the chain is swapped
// whole and never seen empty; a family without CIDRs loses its chain. When
// they are in place it costs one save of the filter table per family. A
// family with CIDRs whose tools are missing is skipped and reported in a
// *NotInstalledError.
// Equivalent to: iptables-save -t filter; iptables-restore --noflush -w 5.
func (t *IPTables) EnsureCluster(ctx context.Context, c Cluster) error {
	var missing *NotInstalledError
	for _, v6 := range []bool{false, true} {
		cidrs := familySubnets(c.CIDRs, v6)
		rs := renderCluster(v6, cidrs)
		var err error
		if len(cidrs) == 0 {
			err = t.delete(ctx, rs, c.Name)
		} else {
			err = t.ensure(ctx, v6, "filter", func(saved) Ruleset { return rs }, c.Name)
		}
		switch {
		case errors.Is(err, exec.ErrNotFound) && len(cidrs) == 0:
		case errors.Is(err, exec.ErrNotFound) && missing == nil:
			missing = &NotInstalledError{Tools: []string{familyName(v6)}, err: err}
		case errors.Is(err, exec.ErrNotFound):
			missing.Tools = append(missing.Tools, familyName(v6))
		case err != nil:
			return err
		}
	}
	if missing != nil {
		return missing
	}
	return nil
}

// DeleteCluster removes both families' chains and the jumps into them; a
// family whose tools are missing holds none.
// Equivalent to: iptables -D FORWARD -j NB-AGENT-FWD; iptables -F/-X NB-AGENT-FWD.
func (t *IPTables) DeleteCluster(ctx context.Context, c Cluster) error {
	for _, v6 := range []bool{false, true} {
		err := t.delete(ctx, renderCluster(v6, nil), c.Name)
		if err != nil && !errors.Is(err, exec.ErrNotFound) {
			return err
		}
	}
	return nil
}

// CheckCluster reports, as errors wrapping ErrMissing, how each family's
// chain and jump depart from EnsureCluster's.
func (t *IPTables) CheckCluster(ctx context.Context, c Cluster) error {
	var errs []error
	for _, v6 := range []bool{false, true} {
		rs := renderCluster(v6, familySubnets(c.CIDRs, v6))
		if len(rs.Chains[0].Rules) == 0 {
			rs.Chains, rs.Absent = nil, rs.Chains
		}
		st, err := t.save(ctx, v6, "filter", c.Name)
		if errors.Is(err, exec.ErrNotFound) && len(rs.Chains) == 0 {
			continue // no iptables, nothing to hold
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, differences(rs, st, c.Name)...)
	}
	return errors.Join(errs...)
}

// FingerprintCluster digests the accepts' objects (see clusterScope) where
// iptables is the nf_tables variant; elsewhere it is empty.
func (t *IPTables) FingerprintCluster(ctx context.Context, c Cluster) (string, error) {
	if t.variant() != variantNFT {
		return "", nil
	}
	return fingerprint(c.Name, clusterScope())
}
