package rules

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"

	"github.com/google/nftables"
)

// SpoofCheck drops the frames a pod sends with a source MAC other than its
// own (the bridge plugin's macspoofchk). It programs table bridge nodebridge
// in process over netlink, like NFTables: one rule for the host and two sets
// whose elements are the pods (see spoofRuleset). Each call reads the table
// and, when anything differs, writes in one batch.
//
// The table, sets, chain and rule are created by the first EnsurePort and
// stay when the last port goes: removing them would race with a concurrent
// ADD adding its elements, and a rule matching empty sets drops nothing.
type SpoofCheck struct {
	nft *NFTables // for its netlink socket, netns and log sink
}

// SpoofPort is one pod's bridge port: the host end of its veth, and the only
// source MAC let in through it, the pod interface's.
type SpoofPort struct {
	IfName string
	MAC    net.HardwareAddr
}

// NewSpoofCheck returns a spoof check that logs through logf; nil discards.
func NewSpoofCheck(logf func(format string, args ...any)) *SpoofCheck {
	return &SpoofCheck{nft: NewNFTables(logf)}
}

// EnsurePort lets p.MAC, and no other source MAC, in through port p.IfName,
// creating the table, sets, chain and rule when missing and repairing them
// when they differ. An element already present is not written again; other
// MACs allowed through the port (left by an earlier pod of the same name)
// are removed in the same batch.
// Equivalent to: nft add element bridge nodebridge spoofchk_ports { PORT };
// nft add element bridge nodebridge spoofchk_allowed { PORT . MAC }
func (s *SpoofCheck) EnsurePort(ctx context.Context, p SpoofPort) error {
	what := fmt.Sprintf("allow only MAC %s through port %s", p.MAC, p.IfName)
	if err := p.validate(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	o := spoofRuleset()
	return s.update(ctx, what, o, func(c *nftables.Conn, st spoofState) (bool, error) {
		diff := append(st.structureDiffs(o), st.portDiffs(p)...)
		if len(diff) == 0 {
			return false, nil
		}
		s.nft.logf("nftables: %s: %v", what, errors.Join(diff...))
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
func (s *SpoofCheck) DeletePort(ctx context.Context, port string) error {
	what := fmt.Sprintf("remove the MAC spoof check of port %s", port)
	o := spoofRuleset()
	err := s.update(ctx, what, o, func(c *nftables.Conn, st spoofState) (bool, error) {
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
	if nftUnavailable(err) {
		return nil // a kernel without nftables holds no element
	}
	return err
}

// CheckPort reports, as errors wrapping ErrMissing, every way the table or
// p's elements depart from what EnsurePort makes.
func (s *SpoofCheck) CheckPort(ctx context.Context, p SpoofPort) error {
	what := fmt.Sprintf("MAC spoof check of port %s (MAC %s)", p.IfName, p.MAC)
	if err := p.validate(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, context.Cause(ctx))
	}
	c, err := s.nft.conn()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer s.nft.logClose(c.CloseLasting)
	o := spoofRuleset()
	st, err := readSpoof(c, o)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return errors.Join(append(st.structureDiffs(o), st.portDiffs(p)...)...)
}

// update reads the table o renders, has queue queue the writes the read
// calls for, and sends them as one batch. A failed batch (another writer
// changed the table since the read) is retried from a fresh read, up to
// maxWrites times.
func (s *SpoofCheck) update(ctx context.Context, what string, o spoofObjects, queue func(*nftables.Conn, spoofState) (bool, error)) error {
	c, err := s.nft.conn()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer s.nft.logClose(c.CloseLasting)
	var werr error
	for attempt := range maxWrites {
		err := ctx.Err()
		if attempt > 0 {
			err = backoff(ctx, attempt)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, context.Cause(ctx))
		}
		st, err := readSpoof(c, o)
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
		s.nft.logf("nftables: %s (write %d): %v", what, attempt+1, werr)
	}
	return fmt.Errorf("%s: write nftables table bridge %s: %w", what, NFTTable, werr)
}

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
func queueStructure(c *nftables.Conn, o spoofObjects, st spoofState) error {
	if !st.table {
		c.AddTable(o.table)
	}
	for _, want := range []*nftables.Set{o.ports, o.allowed} {
		got := st.sets[want.Name]
		if got == nil {
			if err := c.AddSet(want, nil); err != nil {
				return fmt.Errorf("queue nftables set bridge %s %s: %w", NFTTable, want.Name, err)
			}
		} else if err := setTypeDiffers(got, want); err != nil {
			return fmt.Errorf("%w (delete table bridge %s to have it rebuilt)", err, NFTTable)
		}
	}
	chainOK := st.chain != nil && chainHeader(st.chain) == chainHeader(o.chain)
	if !chainOK {
		if st.chain != nil {
			c.DelChain(o.chain) // a base chain's type, hook and priority cannot change in place
		}
		c.AddChain(o.chain)
	}
	if !chainOK || len(st.ruleDiffs(o, "")) > 0 {
		c.FlushChain(o.chain)
		c.AddRule(&nftables.Rule{Table: o.table, Chain: o.chain, Exprs: o.rule.exprs, UserData: spoofComment()})
	}
	return nil
}

// queuePort queues p's two elements unless present, and the removal of any
// other MAC allowed through the port.
func queuePort(c *nftables.Conn, o spoofObjects, st spoofState, p SpoofPort) error {
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
		return fmt.Errorf("queue elements of nftables set bridge %s %s: %w", NFTTable, set.Name, err)
	}
	return nil
}

// deleteElements queues the removal of elems from set; none queues nothing.
func deleteElements(c *nftables.Conn, set *nftables.Set, elems []nftables.SetElement) error {
	if len(elems) == 0 {
		return nil
	}
	if err := c.SetDeleteElements(set, elems); err != nil {
		return fmt.Errorf("queue removal of elements of nftables set bridge %s %s: %w", NFTTable, set.Name, err)
	}
	return nil
}
