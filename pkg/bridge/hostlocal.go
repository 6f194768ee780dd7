package bridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"golang.org/x/sys/unix"

	"github.com/nodebridge/nodebridge/pkg/ipam"
	"github.com/nodebridge/nodebridge/pkg/rules"
)

// hostLocal is host-local IPAM in process: pkg/ipam's store under the
// pool's dataDir. The network's rules are ensured and removed under the
// store's lock, so a concurrent DEL of the network's last other pod cannot
// remove them while an ADD relies on them.
type hostLocal struct {
	// pool holds the ranges, routes and DNS; for DEL and GC only the
	// dataDir (ipam.Config.ReleasePool).
	pool *ipam.Pool
}

// add takes the addresses and, under the same network lock, ensures the
// network's rules.
func (hl *hostLocal) add(ctx context.Context, c *Config, h *Host, p Pod) (_ *current.Result, err error) {
	st, err := hl.lockStore(ctx, c)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	a := ipam.Attachment{ContainerID: p.ContainerID, IfName: p.IfName}
	allocs, err := st.Allocate(hl.pool, a, c.Requested)
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
	if err := ensureRules(ctx, c, h, st, hl.ruleNetwork(c)); err != nil {
		return nil, fmt.Errorf("install rules of network %s: %w", c.Name, err)
	}
	return hl.result(allocs), nil
}

func (hl *hostLocal) release(ctx context.Context, c *Config, h *Host, p Pod) error {
	st, err := hl.lockStore(ctx, c)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.Release(ipam.Attachment{ContainerID: p.ContainerID, IfName: p.IfName}); err != nil {
		return fmt.Errorf("release addresses of %s/%s on network %s: %w", p.ContainerID, p.IfName, c.Name, err)
	}
	return hl.deleteRulesIfUnused(ctx, c, h, st)
}

func (hl *hostLocal) check(ctx context.Context, c *Config, h *Host, p Pod, prev *current.Result) error {
	return errors.Join(hl.checkAllocation(c, p, prev), checkRules(ctx, c, h, hl.ruleNetwork(c)))
}

// status: the store is usable and writable and every range set has a free
// address. A failure wraps ErrUnavailable.
func (hl *hostLocal) status(ctx context.Context, c *Config) error {
	st, err := hl.lockStore(ctx, c)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer st.Close()
	if err := unix.Access(st.Dir(), unix.W_OK); err != nil {
		return fmt.Errorf("%w: ipam.dataDir %s: not writable: %w", ErrUnavailable, st.Dir(), err)
	}
	full, err := st.Full(hl.pool)
	if err != nil {
		return fmt.Errorf("%w: read store %s: %w", ErrUnavailable, st.Dir(), err)
	}
	if full {
		return fmt.Errorf("%w: network %s: address pool exhausted", ErrUnavailable, c.Name)
	}
	return nil
}

// gc releases the attachments not kept, with their host veths and spoof
// checks.
func (hl *hostLocal) gc(ctx context.Context, c *Config, h *Host) error {
	st, err := hl.lockStore(ctx, c)
	if err != nil {
		return err
	}
	defer st.Close()
	valid := make([]ipam.Attachment, len(c.ValidAttachments))
	for i, a := range c.ValidAttachments {
		valid[i] = ipam.Attachment{ContainerID: a.ContainerID, IfName: a.IfName}
	}
	released, err := st.GC(valid)
	if err != nil {
		return fmt.Errorf("gc network %s: %w", c.Name, err)
	}
	for _, a := range released {
		host := hostVethName(Pod{ContainerID: a.ContainerID, IfName: a.IfName})
		if err := deleteHostVeth(h, host); err != nil {
			return err
		}
		if err := deleteSpoofCheck(ctx, h, host); err != nil {
			return err
		}
	}
	return hl.deleteRulesIfUnused(ctx, c, h, st)
}

// deleteRulesIfUnused removes the network's rules once no attachment holds
// an address; the caller holds the store lock.
func (hl *hostLocal) deleteRulesIfUnused(ctx context.Context, c *Config, h *Host, st *ipam.Store) error {
	if h.Rules == nil {
		return nil // no rules to delete: the store need not be read
	}
	empty, err := st.Empty()
	if err != nil {
		return fmt.Errorf("list attachments of network %s: %w", c.Name, err)
	}
	if !empty {
		return nil
	}
	if err := h.rules().DeleteNetwork(ctx, hl.ruleNetwork(c)); err != nil {
		return fmt.Errorf("remove rules of network %s: %w", c.Name, err)
	}
	return nil
}

// checkAllocation insists the store still holds every address of prev.
func (hl *hostLocal) checkAllocation(c *Config, p Pod, prev *current.Result) error {
	st, err := ipam.Open(hl.pool.DataDir, c.Name)
	if err != nil {
		return fmt.Errorf("open ipam store of network %s: %w", c.Name, err)
	}
	defer st.Close()
	held, err := st.Lookup(ipam.Attachment{ContainerID: p.ContainerID, IfName: p.IfName})
	if err != nil {
		return fmt.Errorf("look up allocation of %s/%s: %w", p.ContainerID, p.IfName, err)
	}
	var errs []error
	for _, ip := range prev.IPs {
		if !slices.ContainsFunc(held, func(a netip.Addr) bool { return net.IP(a.AsSlice()).Equal(ip.Address.IP) }) {
			errs = append(errs, fmt.Errorf("address %s is not allocated to %s/%s in %s", ip.Address.IP, p.ContainerID, p.IfName, st.Dir()))
		}
	}
	return errors.Join(errs...)
}

// lockStore opens the network's store and takes its lock; Close releases both.
func (hl *hostLocal) lockStore(ctx context.Context, c *Config) (*ipam.Store, error) {
	st, err := ipam.Open(hl.pool.DataDir, c.Name)
	if err != nil {
		return nil, fmt.Errorf("open ipam store of network %s: %w", c.Name, err)
	}
	if err := st.Lock(ctx); err != nil {
		return nil, fmtJoin(fmt.Errorf("lock network %s: %w", c.Name, err), st.Close())
	}
	return st, nil
}

// ruleNetwork is what the network's rules are built from: the subnets of
// the host-local ranges.
func (hl *hostLocal) ruleNetwork(c *Config) rules.Network {
	var subnets []netip.Prefix
	for _, set := range hl.pool.Sets {
		for _, r := range set {
			subnets = appendNew(subnets, r.Subnet)
		}
	}
	return ruleNetwork(c, subnets)
}

// result turns allocations into an IPAM result with the pool's routes and DNS.
func (hl *hostLocal) result(allocs []ipam.Allocation) *current.Result {
	res := &current.Result{CNIVersion: current.ImplementedSpecVersion}
	for _, a := range allocs {
		ip := &current.IPConfig{Address: *prefixToIPNet(a.Addr)}
		if a.Gateway.IsValid() {
			ip.Gateway = net.IP(a.Gateway.AsSlice())
		}
		res.IPs = append(res.IPs, ip)
	}
	for _, r := range hl.pool.Routes {
		route := &types.Route{Dst: *prefixToIPNet(r.Dst), MTU: r.MTU, AdvMSS: r.AdvMSS, Priority: r.Priority, Table: r.Table, Scope: r.Scope}
		if r.GW.IsValid() {
			route.GW = net.IP(r.GW.AsSlice())
		}
		res.Routes = append(res.Routes, route)
	}
	dns := hl.pool.DNS
	res.DNS = types.DNS{Nameservers: dns.Nameservers, Domain: dns.Domain, Search: dns.Search, Options: dns.Options}
	return res
}
