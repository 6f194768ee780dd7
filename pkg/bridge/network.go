package bridge

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"

	"github.com/nodebridge/nodebridge/pkg/ipam"
	"github.com/nodebridge/nodebridge/pkg/iptables"
)

// undoTimeout bounds the undo of a failed ADD, which must run even when the
// ADD failed because its own deadline passed.
const undoTimeout = 10 * time.Second

// addressPod gets the pod's addresses: in process for host-local, from the
// named plugin for any other IPAM type, none without IPAM (layer 2 only).
func addressPod(ctx context.Context, c *Config, p Pod) (*current.Result, error) {
	switch {
	case c.Pool != nil:
		return allocate(ctx, c, p)
	case c.IPAM != nil && c.IPAM.Type != "":
		return delegateAddWithRules(ctx, c)
	}
	return &current.Result{}, nil
}

// delegateAddWithRules gets the addresses from the IPAM plugin and ensures
// the rules for their subnets.
func delegateAddWithRules(ctx context.Context, c *Config) (res *current.Result, err error) {
	res, err = delegateAdd(ctx, c)
	if err != nil || c.Rules == nil {
		return res, err
	}
	defer func() {
		if err != nil {
			res, err = nil, fmtJoin(err, delegateDel(ctx, c))
		}
	}()
	defer catchPanic(&err) // the addresses are not in Add's undo yet
	if err := c.Rules.EnsureNetwork(ctx, ruleNetwork(c, res.IPs)); err != nil {
		return nil, fmt.Errorf("install rules of network %s: %w", c.Name, err)
	}
	return res, nil
}

// allocate takes the addresses and, under the same network lock, ensures
// the network's rules, so a concurrent DEL of the network's last other pod
// cannot remove them in between.
func allocate(ctx context.Context, c *Config, p Pod) (_ *current.Result, err error) {
	st, err := lockStore(ctx, c)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	a := ipam.Attachment{ContainerID: p.ContainerID, IfName: p.IfName}
	allocs, err := st.Allocate(c.Pool, a, c.Requested)
	if err != nil {
		return nil, fmt.Errorf("allocate address on network %s: %w", c.Name, err)
	}
	defer func() {
		if err != nil {
			_, rerr := st.Release(a)
			err = fmtJoin(err, rerr)
		}
	}()
	defer catchPanic(&err) // the allocation is not in Add's undo yet
	if err := ensureRules(ctx, c, st); err != nil {
		return nil, fmt.Errorf("install rules of network %s: %w", c.Name, err)
	}
	return poolResult(c.Pool, allocs), nil
}

// rulesNote is the store note recording when the network's rules were last
// found in place: the backend's stamp at that moment and the fingerprint of
// the network's own objects, each with what the rules were built from.
const rulesNote = "rules"

// ensureRules makes sure the network's rules are in place. Reading them
// costs an exec of iptables-save, whose cost grows with every rule of the
// node, so it is skipped when the backend's stamp shows that no rule of the
// netns changed since they were last verified for the same subnets, or,
// when something else did change (kube-proxy's syncs, say), when the
// fingerprint of the network's own chains and jumps is still the verified
// one. Any change of those, an operator's flush included, moves both and
// the next ADD verifies and repairs. The caller holds the store lock.
func ensureRules(ctx context.Context, c *Config, st *ipam.Store) error {
	if c.Rules == nil {
		return nil
	}
	n := ruleNetwork(c, nil)
	fp, _ := c.Rules.(iptables.Fingerprinter)
	before := stamp(ctx, c, fp, n)
	verifiedStamp, verifiedFprint, _ := strings.Cut(st.Note(rulesNote), " | ")
	if before != "" && before == verifiedStamp {
		c.logf("rules of network %s unchanged since verified (%s)", c.Name, before)
		return nil
	}
	fprint := fingerprint(ctx, c, fp, n)
	if fprint != "" && fprint == verifiedFprint {
		c.logf("rules of network %s unchanged since verified (others' rules changed; fingerprint %s)", c.Name, fprint)
		recordVerified(c, st, before, fprint)
		return nil
	}
	if err := c.Rules.EnsureNetwork(ctx, n); err != nil {
		return err
	}
	// Only a verification that changed nothing of the network's, ours
	// included, proves the rules as of this stamp and fingerprint; after a
	// write the next ADD records them.
	if fprint != "" && fingerprint(ctx, c, fp, n) == fprint {
		recordVerified(c, st, before, fprint)
	}
	return nil
}

// recordVerified notes the stamp and fingerprint of rules just found in
// place. A stamp taken before the fingerprint is safe to note: if it still
// holds later, nothing has changed since before the fingerprint was taken.
func recordVerified(c *Config, st *ipam.Store, stamp, fprint string) {
	if err := st.SetNote(rulesNote, stamp+" | "+fprint); err != nil {
		c.logf("record rules stamp of network %s (the next ADD verifies again): %v", c.Name, err)
	}
}

// stamp is the backend's stamp with the backend and all the rules are
// built from (the subnets and the non-masquerade prefixes, so that a config
// change is verified and written), or "" when the backend cannot tell.
func stamp(ctx context.Context, c *Config, s iptables.Fingerprinter, n iptables.Network) string {
	if s == nil {
		return ""
	}
	st, err := s.Stamp(ctx)
	return withInputs(c, s, n, "stamp", st, err)
}

// fingerprint is the backend's fingerprint of the network's own objects
// with what the rules are built from, or "" when the backend cannot tell.
func fingerprint(ctx context.Context, c *Config, s iptables.Fingerprinter, n iptables.Network) string {
	if s == nil {
		return ""
	}
	fp, err := s.Fingerprint(ctx, n)
	return withInputs(c, s, n, "fingerprint", fp, err)
}

// withInputs appends the backend and the rules' inputs to a stamp or
// fingerprint v; "" when v is empty or failed.
func withInputs(c *Config, s iptables.Fingerprinter, n iptables.Network, what, v string, err error) string {
	if err != nil || v == "" {
		if err != nil {
			c.logf("rules %s: %v (verifying the rules instead)", what, err)
		}
		return ""
	}
	return fmt.Sprintf("%s %T %v %v", v, s, n.Subnets, n.NonMasquerade)
}

// releaseAddresses frees the pod's addresses and, with the network's last
// attachment, its rules. Nothing held is success.
func releaseAddresses(ctx context.Context, c *Config, p Pod) error {
	switch {
	case c.Pool != nil:
		st, err := lockStore(ctx, c)
		if err != nil {
			return err
		}
		defer st.Close()
		if _, err := st.Release(ipam.Attachment{ContainerID: p.ContainerID, IfName: p.IfName}); err != nil {
			return fmt.Errorf("release addresses of %s/%s on network %s: %w", p.ContainerID, p.IfName, c.Name, err)
		}
		return deleteRulesIfUnused(ctx, c, st)
	case c.IPAM != nil && c.IPAM.Type != "":
		if err := delegateDel(ctx, c); err != nil {
			return err
		}
		return deleteRulesIfNoPorts(ctx, c)
	}
	return nil
}

// deleteRulesIfNoPorts removes the rules of a network whose addresses come
// from another IPAM plugin once its bridge has no port left: without our
// store, the bridge's ports are the network's attachments. A host end a DEL
// retired (down, see reap.go) is no attachment, though it stays a port
// until its reaper deletes it.
func deleteRulesIfNoPorts(ctx context.Context, c *Config) error {
	if c.Rules == nil {
		return nil
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
	if err := c.Rules.DeleteNetwork(ctx, iptables.Network{Name: c.Name}); err != nil {
		return fmt.Errorf("remove rules of network %s: %w", c.Name, err)
	}
	return nil
}

// deleteRulesIfUnused removes the network's rules once no attachment holds
// an address; the caller holds the store lock.
func deleteRulesIfUnused(ctx context.Context, c *Config, st *ipam.Store) error {
	if c.Rules == nil {
		return nil
	}
	empty, err := st.Empty()
	if err != nil {
		return fmt.Errorf("list attachments of network %s: %w", c.Name, err)
	}
	if !empty {
		return nil
	}
	if err := c.Rules.DeleteNetwork(ctx, ruleNetwork(c, nil)); err != nil {
		return fmt.Errorf("remove rules of network %s: %w", c.Name, err)
	}
	return nil
}

// lockStore opens the network's store and takes its lock; Close releases both.
func lockStore(ctx context.Context, c *Config) (*ipam.Store, error) {
	st, err := ipam.Open(c.Pool.DataDir, c.Name)
	if err != nil {
		return nil, fmt.Errorf("open ipam store of network %s: %w", c.Name, err)
	}
	if err := st.Lock(ctx); err != nil {
		return nil, fmtJoin(fmt.Errorf("lock network %s: %w", c.Name, err), st.Close())
	}
	return st, nil
}

// ruleNetwork is what the rules of c are built from: the subnets of its
// host-local ranges, or else those of the addresses another IPAM plugin
// gave, and the destinations nonMasqueradeCIDRs exempts from masquerade.
func ruleNetwork(c *Config, ips []*current.IPConfig) iptables.Network {
	n := iptables.Network{Name: c.Name, NonMasquerade: c.NonMasquerade}
	add := func(p netip.Prefix) {
		if !contains(n.Subnets, p) {
			n.Subnets = append(n.Subnets, p)
		}
	}
	if c.Pool != nil {
		for _, set := range c.Pool.Sets {
			for _, r := range set {
				add(r.Subnet)
			}
		}
		return n
	}
	for _, ip := range ips {
		add(toPrefix(&ip.Address).Masked())
	}
	return n
}

// poolResult turns allocations into an IPAM result with the pool's routes and DNS.
func poolResult(pool *ipam.Pool, allocs []ipam.Allocation) *current.Result {
	res := &current.Result{CNIVersion: current.ImplementedSpecVersion}
	for _, a := range allocs {
		ip := &current.IPConfig{Address: *prefixToIPNet(a.Addr)}
		if a.Gateway.IsValid() {
			ip.Gateway = net.IP(a.Gateway.AsSlice())
		}
		res.IPs = append(res.IPs, ip)
	}
	for _, r := range pool.Routes {
		route := &types.Route{Dst: *prefixToIPNet(r.Dst)}
		if r.GW.IsValid() {
			route.GW = net.IP(r.GW.AsSlice())
		}
		res.Routes = append(res.Routes, route)
	}
	res.DNS = types.DNS{Nameservers: pool.DNS.Nameservers, Domain: pool.DNS.Domain, Search: pool.DNS.Search, Options: pool.DNS.Options}
	return res
}

// fmtJoin adds a cleanup error to the main one, if there was any.
func fmtJoin(err, cleanup error) error {
	if cleanup == nil {
		return err
	}
	return fmt.Errorf("%w (cleanup: %w)", err, cleanup)
}
