package spoofchk

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/google/nftables"

	"github.com/nodebridge/nodebridge/pkg/rules"
)

// NFTables is the Checker that programs table bridge nodebridge in
// process, over netlink, with github.com/google/nftables: one rule for the
// host and two sets whose elements are the pods (see ruleset). Each call
// reads the table and, when anything differs, writes in one batch.
//
// The table, sets, chain and rule are created by the first EnsurePort and
// stay when the last port goes: removing them would race with a concurrent
// ADD adding its elements, and a rule matching empty sets drops nothing.
type NFTables struct {
	logf func(format string, args ...any)
	// netns is an fd of the netns to program, 0 for the caller's own; tests
	// set it.
	netns int
}

var _ Checker = (*NFTables)(nil)

// New returns a spoof check that logs through logf; nil discards.
func New(logf func(format string, args ...any)) *NFTables {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &NFTables{logf: logf}
}

// conn opens one netlink socket for all the requests of one call.
func (s *NFTables) conn() (*nftables.Conn, error) {
	c, err := nftables.New(nftables.AsLasting(), nftables.WithNetNSFd(s.netns))
	if err != nil {
		return nil, fmt.Errorf("open nftables netlink socket: %w", err)
	}
	return c, nil
}

// logClose closes a socket: once the work is done a close error changes
// nothing in the kernel, so it is logged rather than returned.
func (s *NFTables) logClose(closeFn func() error) {
	if err := closeFn(); err != nil {
		s.logf("nftables: close netlink socket: %v", err)
	}
}

// EnsurePort lets p.MAC, and no other source MAC, in through port p.IfName,
// creating the table, sets, chain and rule when missing and repairing them
// when they differ. An element already present is not written again; other
// MACs allowed through the port (left by an earlier pod of the same name)
// are removed in the same batch.
// Equivalent to: nft add element bridge nodebridge spoofchk_ports { PORT };
// nft add element bridge nodebridge spoofchk_allowed { PORT . MAC }
func (s *NFTables) EnsurePort(ctx context.Context, p Port) error {
	what := fmt.Sprintf("allow only MAC %s through port %s", p.MAC, p.IfName)
	if err := p.validate(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	o := ruleset()
	return s.update(ctx, what, o, func(c *nftables.Conn, st state) (bool, error) {
		diff := append(st.structureDiffs(o), st.portDiffs(p)...)
		if len(diff) == 0 {
			return false, nil
		}
		s.logf("nftables: %s: %v", what, errors.Join(diff...))
		if err := queueStructure(c, o, st); err != nil {
			return false, err
		}
		return true, queuePort(c, o, st, p)
	})
}

// DeletePort removes port's elements, whatever MACs they allow. A missing
// table, set or element is success, so DEL is idempotent.
// Equivalent to: nft delete element bridge nodebridge spoofchk_ports { PORT };
// nft delete element bridge nodebridge spoofchk_allowed { PORT . MAC }
func (s *NFTables) DeletePort(ctx context.Context, port string) error {
	what := fmt.Sprintf("remove the MAC spoof check of port %s", port)
	o := ruleset()
	err := s.update(ctx, what, o, func(c *nftables.Conn, st state) (bool, error) {
		var ports, allowed []nftables.SetElement
		for _, name := range st.ports {
			if name == port {
				ports = append(ports, nftables.SetElement{Key: portKey(port)})
			}
		}
		for _, mac := range st.allowed[port] {
			allowed = append(allowed, nftables.SetElement{Key: allowedKey(port, mac)})
		}
		if len(ports)+len(allowed) == 0 {
			return false, nil
		}
		return true, errors.Join(deleteElements(c, o.ports, ports), deleteElements(c, o.allowed, allowed))
	})
	if rules.NFTUnavailable(err) {
		return nil // a kernel without nftables holds no element
	}
	return err
}

// CheckPort reports, as errors wrapping ErrMissing, every way the table or
// p's elements depart from what EnsurePort makes.
func (s *NFTables) CheckPort(ctx context.Context, p Port) error {
	what := fmt.Sprintf("MAC spoof check of port %s (MAC %s)", p.IfName, p.MAC)
	if err := p.validate(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, context.Cause(ctx))
	}
	c, err := s.conn()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer s.logClose(c.CloseLasting)
	o := ruleset()
	st, err := readTable(c, o)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return errors.Join(append(st.structureDiffs(o), st.portDiffs(p)...)...)
}

// update reads the table o renders, has queue queue the writes the read
// calls for, and sends them as one batch. A failed batch (another writer
// changed the table since the read) is retried from a fresh read, up to
// maxWrites times.
func (s *NFTables) update(ctx context.Context, what string, o objects, queue func(*nftables.Conn, state) (bool, error)) error {
	c, err := s.conn()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer s.logClose(c.CloseLasting)
	var werr error
	for attempt := range maxWrites {
		err := ctx.Err()
		if attempt > 0 {
			err = rules.Backoff(ctx, attempt)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, context.Cause(ctx))
		}
		st, err := readTable(c, o)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		queued, err := queue(c, st)
		if err != nil || !queued {
			return wrapIf(what, err)
		}
		if werr = c.Flush(); werr == nil {
			return nil
		}
		s.logf("nftables: %s (write %d): %v", what, attempt+1, werr)
	}
	return fmt.Errorf("%s: write nftables table bridge %s: %w", what, tableName, werr)
}

// maxWrites bounds the batches of one call: a batch fails only when another
// writer changed the table since the read, and the next read settles it.
const maxWrites = 3

// wrapIf prefixes err with what, keeping nil.
func wrapIf(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

// queueStructure queues what st shows missing or differing of the table,
// sets, chain and rule. Creating what exists is harmless (no NLM_F_EXCL),
// and the rule is only ever added right after its chain is flushed, so
// writers racing on an empty table still leave exactly one rule. A set of
// another type cannot be fixed in place: its elements would be lost, so the
// operator decides.
func queueStructure(c *nftables.Conn, o objects, st state) error {
	if !st.table {
		c.AddTable(o.table)
	}
	for _, want := range []*nftables.Set{o.ports, o.allowed} {
		got := st.sets[want.Name]
		if got == nil {
			if err := c.AddSet(want, nil); err != nil {
				return fmt.Errorf("queue nftables set bridge %s %s: %w", tableName, want.Name, err)
			}
		} else if err := setTypeDiffers(got, want); err != nil {
			return fmt.Errorf("%w (delete table bridge %s to have it rebuilt)", err, tableName)
		}
	}
	chainOK := st.chain != nil && rules.ChainHeader(st.chain) == rules.ChainHeader(o.chain)
	if !chainOK {
		if st.chain != nil {
			c.DelChain(o.chain) // a base chain's type, hook and priority cannot change in place
		}
		c.AddChain(o.chain)
	}
	if !chainOK || len(st.ruleDiffs(o, "")) > 0 {
		c.FlushChain(o.chain)
		c.AddRule(&nftables.Rule{Table: o.table, Chain: o.chain, Exprs: o.rule.exprs, UserData: ruleComment()})
	}
	return nil
}

// queuePort queues p's two elements unless present, and the removal of any
// other MAC allowed through the port.
func queuePort(c *nftables.Conn, o objects, st state, p Port) error {
	var stale []nftables.SetElement
	for _, mac := range st.stale(p) {
		stale = append(stale, nftables.SetElement{Key: allowedKey(p.IfName, mac)})
	}
	errs := []error{deleteElements(c, o.allowed, stale)}
	if !slices.Contains(st.ports, p.IfName) {
		errs = append(errs, addElements(c, o.ports, nftables.SetElement{Key: portKey(p.IfName)}))
	}
	if !st.allows(p) {
		errs = append(errs, addElements(c, o.allowed, nftables.SetElement{Key: allowedKey(p.IfName, p.MAC)}))
	}
	return errors.Join(errs...)
}

// addElements queues the addition of elems to set.
func addElements(c *nftables.Conn, set *nftables.Set, elems ...nftables.SetElement) error {
	if err := c.SetAddElements(set, elems); err != nil {
		return fmt.Errorf("queue elements of nftables set bridge %s %s: %w", tableName, set.Name, err)
	}
	return nil
}

// deleteElements queues the removal of elems from set; none queues nothing.
func deleteElements(c *nftables.Conn, set *nftables.Set, elems []nftables.SetElement) error {
	if len(elems) == 0 {
		return nil
	}
	if err := c.SetDeleteElements(set, elems); err != nil {
		return fmt.Errorf("queue removal of elements of nftables set bridge %s %s: %w", tableName, set.Name, err)
	}
	return nil
}
