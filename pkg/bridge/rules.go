package bridge

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"

	"github.com/nodebridge/nodebridge/pkg/ipam"
	"github.com/nodebridge/nodebridge/pkg/rules"
)

// undoTimeout bounds the undo of a failed ADD, which must run even when the
// ADD failed because its own deadline passed.
const undoTimeout = 10 * time.Second

// ensureRules makes sure the network's rules are in place. Reading them
// costs an exec of iptables-save, whose cost grows with every rule of the
// node, so it is skipped when the backend's stamp shows that no rule of the
// netns changed since they were last verified for the same subnets, or,
// when something else did change (kube-proxy's syncs, say), when the
// fingerprint of the network's own chains and jumps is still the verified
// one. Any change of those, an operator's flush included, moves both and
// the next ADD verifies and repairs. The caller holds the lock of st,
// where the last verification is recorded (verified.go).
func ensureRules(ctx context.Context, c *Config, h *Host, st *ipam.Store, n rules.Network) error {
	backend := h.rules()
	fp, _ := backend.(rules.Fingerprinter)
	before := stamp(ctx, h, fp, n)
	var last verified
	if fp != nil {
		last = readVerified(st)
	}
	if before != "" && before == last.stamp {
		h.logf("rules of network %s unchanged since verified (%s)", c.Name, before)
		return nil
	}
	fprint := fingerprint(ctx, h, fp, n)
	if fprint != "" && fprint == last.fingerprint {
		h.logf("rules of network %s unchanged since verified (others' rules changed; fingerprint %s)", c.Name, fprint)
		recordVerified(c, h, st, verified{before, fprint})
		return nil
	}
	if err := backend.EnsureNetwork(ctx, n); err != nil {
		return err
	}
	// Only a verification that changed nothing of the network's, ours
	// included, proves the rules as of this stamp and fingerprint; after a
	// write the next ADD records them.
	if fprint != "" && fingerprint(ctx, h, fp, n) == fprint {
		recordVerified(c, h, st, verified{before, fprint})
	}
	return nil
}

// recordVerified records the stamp and fingerprint of rules just found in
// place. A stamp taken before the fingerprint is safe to record: if it
// still holds later, nothing has changed since before the fingerprint was
// taken.
func recordVerified(c *Config, h *Host, st *ipam.Store, v verified) {
	if err := writeVerified(st, v); err != nil {
		h.logf("record verified rules of network %s (the next ADD verifies again): %v", c.Name, err)
	}
}

// stamp is the backend's stamp with the backend and all the rules are
// built from (the subnets and the non-masquerade prefixes, so that a config
// change is verified and written), or "" when the backend cannot tell.
func stamp(ctx context.Context, h *Host, s rules.Fingerprinter, n rules.Network) string {
	if s == nil {
		return ""
	}
	st, err := s.Stamp(ctx)
	return withInputs(h, s, n, "stamp", st, err)
}

// fingerprint is the backend's fingerprint of the network's own objects
// with what the rules are built from, or "" when the backend cannot tell.
func fingerprint(ctx context.Context, h *Host, s rules.Fingerprinter, n rules.Network) string {
	if s == nil {
		return ""
	}
	fp, err := s.Fingerprint(ctx, n)
	return withInputs(h, s, n, "fingerprint", fp, err)
}

// withInputs appends the backend and the rules' inputs to a stamp or
// fingerprint v; "" when v is empty or failed.
func withInputs(h *Host, s rules.Fingerprinter, n rules.Network, what, v string, err error) string {
	if err != nil || v == "" {
		if err != nil {
			h.logf("rules %s: %v (verifying the rules instead)", what, err)
		}
		return ""
	}
	return fmt.Sprintf("%s %T %v %v", v, s, n.Subnets, n.NonMasquerade)
}

// checkRules insists the rules of n are in place.
func checkRules(ctx context.Context, c *Config, h *Host, n rules.Network) error {
	if err := h.rules().CheckNetwork(ctx, n); err != nil {
		return fmt.Errorf("rules of network %s: %w", c.Name, err)
	}
	return nil
}

// checkRulesOf checks the rules of the subnets of ips, the addresses an
// IPAM plugin other than ours gave; without any there is nothing to check.
func checkRulesOf(ctx context.Context, c *Config, h *Host, ips []*current.IPConfig) error {
	if len(ips) == 0 {
		return nil
	}
	return checkRules(ctx, c, h, ruleNetworkOf(c, ips))
}

// deleteRulesIfNoPorts removes the rules of a network whose addresses come
// from another IPAM plugin once its bridge has no port left: without our
// store, the bridge's ports are the network's attachments. A host end a DEL
// retired (down, see reap.go) is no attachment, though it stays a port
// until its reaper deletes it.
func deleteRulesIfNoPorts(ctx context.Context, c *Config, h *Host) error {
	if h.Rules == nil {
		return nil // no rules to delete: the links need not be listed
	}
	br, err := netlink.LinkByName(c.Bridge)
	if err == nil {
		links, err := netlink.LinkList()
		if err != nil {
			return fmt.Errorf("list links: %w", err)
		}
		gwPort := vlanPortName(c.Bridge, c.Vlan) // the VLAN gateway's port outlives every pod
		for _, l := range links {
			a := l.Attrs()
			retired := l.Type() == "veth" && isHostVethName(a.Name) && a.Flags&net.FlagUp == 0
			if a.MasterIndex == br.Attrs().Index && !retired && (c.Vlan == 0 || a.Name != gwPort) {
				return nil
			}
		}
	}
	if err := h.rules().DeleteNetwork(ctx, rules.Network{Name: c.Name}); err != nil {
		return fmt.Errorf("remove rules of network %s: %w", c.Name, err)
	}
	return nil
}

// ruleNetwork is what the rules of c are built from: the pod subnets and
// the destinations nonMasqueradeCIDRs exempts from masquerade.
func ruleNetwork(c *Config, subnets []netip.Prefix) rules.Network {
	return rules.Network{Name: c.Name, Subnets: subnets, NonMasquerade: c.NonMasquerade}
}

// ruleNetworkOf is ruleNetwork with the subnets of the addresses another
// IPAM plugin gave.
func ruleNetworkOf(c *Config, ips []*current.IPConfig) rules.Network {
	var subnets []netip.Prefix
	for _, ip := range ips {
		subnets = appendNew(subnets, toPrefix(&ip.Address).Masked())
	}
	return ruleNetwork(c, subnets)
}

// appendNew appends p to list unless it is there already.
func appendNew(list []netip.Prefix, p netip.Prefix) []netip.Prefix {
	if contains(list, p) {
		return list
	}
	return append(list, p)
}

// fmtJoin adds a cleanup error to the main one, if there was any.
func fmtJoin(err, cleanup error) error {
	if cleanup == nil {
		return err
	}
	return fmt.Errorf("%w (cleanup: %w)", err, cleanup)
}
