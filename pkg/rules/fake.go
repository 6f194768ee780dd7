package rules

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// Op names a Backend method, to count its calls or make it fail in a Fake.
type Op string

// The Backend and ClusterBackend methods a Fake records.
const (
	OpEnsure Op = "ensure"
	OpDelete Op = "delete"
	OpCheck  Op = "check"

	OpEnsureCluster Op = "ensure-cluster"
	OpDeleteCluster Op = "delete-cluster"
	OpCheckCluster  Op = "check-cluster"
)

// Fake is an in-memory Backend and ClusterBackend for tests of their
// callers. It remembers which networks and cluster accepts are ensured, counts calls per Op, and fails or panics in an Op on
// demand. The zero value is ready to use and safe for concurrent use.
type Fake struct {
	mu      sync.Mutex
	ensured map[string]Network
	cluster *Cluster // as last ensured; nil: none
	calls   map[Op]int
	errs    map[Op]error
	panics  map[Op]any
}

var _ Backend = (*Fake)(nil)

// SetErr makes every later call of op return err, leaving the recorded
// networks unchanged; a nil err makes op succeed again.
func (f *Fake) SetErr(op Op, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.errs == nil {
		f.errs = map[Op]error{}
	}
	f.errs[op] = err
}

// SetPanic makes every later call of op panic with v, as a bug would, to
// test that callers undo and answer all the same; a nil v stops it.
func (f *Fake) SetPanic(op Op, v any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.panics == nil {
		f.panics = map[Op]any{}
	}
	f.panics[op] = v
}

// Calls returns how many times op has been called, failed calls included.
func (f *Fake) Calls(op Op) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// Ensured reports whether the named network's rules are in place.
func (f *Fake) Ensured(name string) bool {
	_, ok := f.Network(name)
	return ok
}

// Network returns the network as last ensured, and whether it is in place.
func (f *Fake) Network(name string) (Network, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.ensured[name]
	return n.clone(), ok
}

// EnsureNetwork records n as in place.
func (f *Fake) EnsureNetwork(ctx context.Context, n Network) error {
	return f.do(ctx, OpEnsure, func() error {
		if f.ensured == nil {
			f.ensured = map[string]Network{}
		}
		f.ensured[n.Name] = n.clone()
		return nil
	})
}

// DeleteNetwork forgets n; deleting an unknown network is not an error.
func (f *Fake) DeleteNetwork(ctx context.Context, n Network) error {
	return f.do(ctx, OpDelete, func() error {
		delete(f.ensured, n.Name)
		return nil
	})
}

// CheckNetwork fails with ErrMissing unless n was ensured with the same
// subnets and non-masquerade prefixes.
func (f *Fake) CheckNetwork(ctx context.Context, n Network) error {
	return f.do(ctx, OpCheck, func() error {
		got, ok := f.ensured[n.Name]
		switch {
		case !ok:
			return fmt.Errorf("fake rules of network %q: not ensured: %w", n.Name, ErrMissing)
		case !slices.Equal(got.Subnets, n.Subnets):
			return fmt.Errorf("fake rules of network %q: subnets %v, want %v: %w", n.Name, got.Subnets, n.Subnets, ErrMissing)
		case !slices.Equal(got.NonMasquerade, n.NonMasquerade):
			return fmt.Errorf("fake rules of network %q: non-masquerade prefixes %v, want %v: %w",
				n.Name, got.NonMasquerade, n.NonMasquerade, ErrMissing)
		}
		return nil
	})
}

// clone copies n's slices, so the caller's later changes do not reach the
// recorded network, nor the recorded network's reach a reader.
func (n Network) clone() Network {
	n.Subnets = slices.Clone(n.Subnets)
	n.NonMasquerade = slices.Clone(n.NonMasquerade)
	return n
}

// do counts the call, then panics with the injected value or returns the
// injected error, the context's error or the result of apply, in that
// order, all under the lock.
func (f *Fake) do(ctx context.Context, op Op, apply func() error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[Op]int{}
	}
	f.calls[op]++
	if v := f.panics[op]; v != nil {
		panic(v)
	}
	if err := f.errs[op]; err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fake %s: %w", op, err)
	}
	return apply()
}

// Cluster returns the cluster accepts as last ensured, and whether they are
// in place.
func (f *Fake) Cluster() (Cluster, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cluster == nil {
		return Cluster{}, false
	}
	return Cluster{Name: f.cluster.Name, CIDRs: slices.Clone(f.cluster.CIDRs)}, true
}

// EnsureCluster records c as in place.
func (f *Fake) EnsureCluster(ctx context.Context, c Cluster) error {
	return f.do(ctx, OpEnsureCluster, func() error {
		f.cluster = &Cluster{Name: c.Name, CIDRs: slices.Clone(c.CIDRs)}
		return nil
	})
}

// DeleteCluster forgets the cluster accepts; none is not an error.
func (f *Fake) DeleteCluster(ctx context.Context, c Cluster) error {
	return f.do(ctx, OpDeleteCluster, func() error {
		f.cluster = nil
		return nil
	})
}

// CheckCluster fails with ErrMissing unless c was ensured with the same CIDRs.
func (f *Fake) CheckCluster(ctx context.Context, c Cluster) error {
	return f.do(ctx, OpCheckCluster, func() error {
		if f.cluster == nil || !slices.Equal(f.cluster.CIDRs, c.CIDRs) {
			return fmt.Errorf("fake accepts of network %q: not ensured with %v: %w", c.Name, c.CIDRs, ErrMissing)
		}
		return nil
	})
}
