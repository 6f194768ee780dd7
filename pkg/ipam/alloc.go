package ipam

import (
	"errors"
	"fmt"
	"net/netip"
)

// Allocate hands out one address per range set of p to a (the caller holds
// the lock). An address a already holds in a set is returned again, so a
// repeated ADD allocates nothing new; only a set where a holds nothing (one
// added to the config since) gets a fresh address. requested addresses are
// honoured in the set whose ranges hold them. If any set fails, what this
// call took is released.
func (s *Store) Allocate(p *Pool, a Attachment, requested []netip.Addr) (_ []Allocation, err error) {
	if err := a.validate(); err != nil {
		return nil, err
	}
	want, err := p.assignRequested(requested)
	if err != nil {
		return nil, err
	}
	recs, _, err := s.scan()
	if err != nil {
		return nil, err
	}
	al := newAllocation(s, p, a, recs)
	defer func() {
		if err != nil {
			err = errors.Join(err, al.rollback())
		}
	}()
	out := make([]Allocation, len(p.Sets))
	for i, set := range p.Sets {
		addr, err := al.ensure(i, want[i])
		if err != nil {
			return nil, err
		}
		r := set[set.rangeFor(addr)]
		out[i] = Allocation{Addr: netip.PrefixFrom(addr, r.Subnet.Bits()), Gateway: r.Gateway}
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
	recs    []record
	taken   map[netip.Addr]bool
	created []netip.Addr // records written by this call, for rollback
}

func newAllocation(s *Store, p *Pool, a Attachment, recs []record) *allocation {
	taken := make(map[netip.Addr]bool, len(recs))
	for _, r := range recs {
		taken[r.addr] = true
	}
	return &allocation{s: s, p: p, owner: a, recs: recs, taken: taken}
}

// ensure returns the owner's address in set i: the one it holds, the
// requested one, or the next free one.
func (al *allocation) ensure(i int, want netip.Addr) (netip.Addr, error) {
	if held := al.held(i); held.IsValid() {
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

// held returns the lowest address in set i the owner already holds, or the
// zero Addr.
func (al *allocation) held(i int) netip.Addr {
	for _, r := range al.recs {
		if r.matches(al.owner) && al.p.Sets[i].rangeFor(r.addr) >= 0 {
			return r.addr
		}
	}
	return netip.Addr{}
}

func (al *allocation) takeRequested(i int, addr netip.Addr) (netip.Addr, error) {
	if !al.taken[addr] {
		ok, err := al.s.writeRecord(addr, al.owner)
		if err != nil {
			return netip.Addr{}, err
		}
		if ok {
			return addr, al.took(i, addr)
		}
	}
	return netip.Addr{}, fmt.Errorf("requested address %s is already allocated", addr)
}

// takeNext takes the first free address after the set's last reserved one,
// round-robin over its ranges.
func (al *allocation) takeNext(i int) (netip.Addr, error) {
	set := al.p.Sets[i]
	for addr := range set.walk(al.s.lastReserved(i)) {
		if al.taken[addr] || al.p.isGateway(addr) {
			continue
		}
		ok, err := al.s.writeRecord(addr, al.owner)
		if err != nil {
			return netip.Addr{}, err
		}
		if ok {
			return addr, al.took(i, addr)
		}
		al.taken[addr] = true // taken since the scan, by a process ignoring the lock
	}
	return netip.Addr{}, fmt.Errorf("range set %d (%s): %w", i, set, ErrExhausted)
}

// took notes addr as written by this call and makes it the set's last
// reserved address, as the reference does for every reservation.
func (al *allocation) took(i int, addr netip.Addr) error {
	al.taken[addr] = true
	al.created = append(al.created, addr)
	return al.s.setLastReserved(i, addr)
}

// rollback removes the records this call wrote.
func (al *allocation) rollback() error {
	var errs []error
	for _, addr := range al.created {
		errs = append(errs, al.s.removeFile(addr.String()))
	}
	return errors.Join(errs...)
}
