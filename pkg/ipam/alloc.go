package ipam

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Allocate hands out one address per range set of p to a (the caller holds
// the lock). An address a already holds in a set is returned again, so a
// repeated ADD allocates nothing new; only a set where a holds nothing (one
// added to the config since) gets a fresh address. requested addresses are
// honoured in the set whose ranges hold them. If any set fails, what this
// call took is released.
//
// Its cost does not grow with the number of allocations: the index says
// what a holds, and a fresh address is claimed by a create-exclusive link
// walking round-robin from last_reserved_ip, so only the run of taken
// addresses just after it is tried, which round-robin keeps short.
func (s *Store) Allocate(p *Pool, a Attachment, requested []netip.Addr) ([]Allocation, error) {
	if err := a.validate(); err != nil {
		return nil, err
	}
	want, err := p.assignRequested(requested)
	if err != nil {
		return nil, err
	}
	ix, err := s.openIndex()
	if err != nil {
		return nil, err
	}
	held, err := ix.heldOrRebuild(a)
	if err != nil {
		return nil, err
	}
	al := &allocation{s: s, p: p, owner: a, want: want, held: held, claim: s.newClaim(a)}
	out, err := al.run()
	// The temp file goes before the seal: removing it changes the directory.
	err = errors.Join(err, al.claim.close())
	if err == nil {
		err = al.commit(ix)
	}
	if err != nil {
		return nil, errors.Join(err, al.undo(ix))
	}
	return out, nil
}

// assignRequested maps each requested address to the range set whose ranges
// hold it; the result has one entry per set, zero where none was requested.
func (p *Pool) assignRequested(requested []netip.Addr) ([]netip.Addr, error) {
	want := make([]netip.Addr, len(p.Sets))
	var errs []error
	for _, addr := range requested {
		i := p.setFor(addr)
		switch {
		case i < 0:
			errs = append(errs, invalid("requested address", addr.String(), "outside every range"))
		case want[i].IsValid():
			errs = append(errs, invalid("requested address", addr.String(),
				"range set %d (%s) already has requested address %s", i, p.Sets[i], want[i]))
		case p.isGateway(addr):
			errs = append(errs, invalid("requested address", addr.String(), "is a gateway"))
		default:
			want[i] = addr
		}
	}
	return want, errors.Join(errs...)
}

// setFor returns the index of the range set holding addr, or -1.
func (p *Pool) setFor(addr netip.Addr) int {
	for i, set := range p.Sets {
		if set.rangeFor(addr) >= 0 {
			return i
		}
	}
	return -1
}

// isGateway reports whether addr is the gateway of any range of p; no
// gateway is handed out, even one that lies in another range's span.
func (p *Pool) isGateway(addr netip.Addr) bool {
	for _, set := range p.Sets {
		for _, r := range set {
			if r.Gateway == addr {
				return true
			}
		}
	}
	return false
}

// allocation is the state of one Allocate call.
type allocation struct {
	s       *Store
	p       *Pool
	owner   Attachment
	want    []netip.Addr // requested address per set, or the zero Addr
	held    []record     // what the owner held before the call, sorted
	claim   *claim
	created []string // records written by this call, for the index and rollback
	indexed bool     // the owner's entry was rewritten
}

// run takes an address in every set, as Allocate returns them.
func (al *allocation) run() ([]Allocation, error) {
	out := make([]Allocation, len(al.p.Sets))
	for i, set := range al.p.Sets {
		addr, err := al.ensure(i, al.want[i])
		if err != nil {
			return nil, err
		}
		r := set[set.rangeFor(addr)]
		out[i] = Allocation{Addr: netip.PrefixFrom(addr, r.Subnet.Bits()), Gateway: r.Gateway}
	}
	return out, nil
}

// ensure returns the owner's address in set i: the one it holds, the
// requested one, or the next free one.
func (al *allocation) ensure(i int, want netip.Addr) (netip.Addr, error) {
	if held := al.heldIn(i); held.IsValid() {
		if want.IsValid() && want != held {
			return netip.Addr{}, fmt.Errorf("requested address %s: %s/%s already holds %s in range set %d",
				want, al.owner.ContainerID, al.owner.IfName, held, i)
		}
		return held, nil
	}
	if want.IsValid() {
		return al.takeRequested(i, want)
	}
	return al.takeNext(i)
}

// heldIn returns the lowest address in set i the owner already holds, or
// the zero Addr.
func (al *allocation) heldIn(i int) netip.Addr {
	for _, r := range al.held {
		if al.p.Sets[i].rangeFor(r.addr) >= 0 {
			return r.addr
		}
	}
	return netip.Addr{}
}

func (al *allocation) takeRequested(i int, addr netip.Addr) (netip.Addr, error) {
	ok, err := al.claim.take(addr)
	if err != nil {
		return netip.Addr{}, err
	}
	if !ok {
		return netip.Addr{}, fmt.Errorf("requested address %s is already allocated", addr)
	}
	return addr, al.took(i, addr)
}

// takeNext takes the first free address after the set's last reserved one,
// round-robin over its ranges. Whether an address is free is learnt by
// trying to claim it, with no listing of the directory.
func (al *allocation) takeNext(i int) (netip.Addr, error) {
	set := al.p.Sets[i]
	for addr := range set.walk(al.s.lastReserved(i)) {
		if al.p.isGateway(addr) {
			continue
		}
		ok, err := al.claim.take(addr)
		if err != nil {
			return netip.Addr{}, err
		}
		if ok {
			return addr, al.took(i, addr)
		}
	}
	return netip.Addr{}, fmt.Errorf("range set %d (%s): %w", i, set, ErrExhausted)
}

// took notes addr as written by this call and makes it the set's last
// reserved address, as the reference does for every reservation.
func (al *allocation) took(i int, addr netip.Addr) error {
	al.created = append(al.created, addr.String())
	return al.s.setLastReserved(i, addr)
}

// commit records what the owner now holds in its index entry and seals
// the index. Legacy records it holds stay in their own entry.
func (al *allocation) commit(ix *index) error {
	if len(al.created) == 0 {
		return ix.commit() // nothing new: a no-op unless a rebuild is pending
	}
	var names []string
	for _, r := range al.held {
		if !r.legacy {
			names = append(names, r.name)
		}
	}
	al.indexed = true
	if err := ix.writeEntry(entry{owner: al.key(), names: append(names, al.created...)}); err != nil {
		return err
	}
	return ix.commit()
}

// key is the owner as its index entry names it.
func (al *allocation) key() Attachment {
	return Attachment{ContainerID: strings.TrimSpace(al.owner.ContainerID), IfName: al.owner.IfName}
}

// undo removes the records this call wrote. The index is sealed again only
// when that leaves it exact; otherwise the next locked call rebuilds it.
func (al *allocation) undo(ix *index) error {
	var errs []error
	for _, name := range al.created {
		errs = append(errs, al.s.removeFile(name))
	}
	if err := errors.Join(errs...); err != nil || al.indexed {
		return err
	}
	return ix.commit()
}

// CheckRequested reports, before anything is written, requested addresses
// that Allocate would refuse: outside every range, a gateway, or two for one
// range set. Errors wrap ErrInvalid.
func (p *Pool) CheckRequested(requested []netip.Addr) error {
	_, err := p.assignRequested(requested)
	return err
}
