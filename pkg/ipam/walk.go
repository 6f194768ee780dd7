package ipam

import (
	"iter"
	"net/netip"
)

// walk yields every address of the set's ranges once, round-robin as the
// reference allocator does: starting just after last if a range holds it
// (so last itself comes at the very end), otherwise at the first range's
// start; on through the ranges in order, wrapping around.
func (s RangeSet) walk(last netip.Addr) iter.Seq[netip.Addr] {
	return func(yield func(netip.Addr) bool) {
		if len(s) == 0 { // only a hand-built Pool has one; Config.Pool rejects it
			return
		}
		ri, from := s.walkStart(last)
		for k := 0; k <= len(s); k++ {
			r := s[(ri+k)%len(s)]
			lo, hi := r.Start, r.End
			if k == 0 {
				lo = from
			}
			if k == len(s) { // back in the first range: the part before from
				if from == r.Start {
					return
				}
				hi = from.Prev()
			}
			for a := lo; ; a = a.Next() {
				if !yield(a) {
					return
				}
				if a == hi {
					break
				}
			}
		}
	}
}

// walkStart returns the range index and address the walk begins at.
func (s RangeSet) walkStart(last netip.Addr) (int, netip.Addr) {
	ri := s.rangeFor(last)
	switch {
	case ri < 0:
		return 0, s[0].Start
	case last == s[ri].End:
		ri = (ri + 1) % len(s)
		return ri, s[ri].Start
	default:
		return ri, last.Next()
	}
}

// Full reports whether some range set of p has no free address; STATUS
// reports that as CNI error 50.
func (s *Store) Full(p *Pool) (bool, error) {
	recs, _, err := s.scan()
	if err != nil {
		return false, err
	}
	taken := make(map[netip.Addr]bool, len(recs))
	for _, r := range recs {
		taken[r.addr] = true
	}
	for _, set := range p.Sets {
		if !set.hasFree(p, taken) {
			return true, nil
		}
	}
	return false, nil
}

// hasFree reports whether set holds an address that is neither taken nor a
// gateway. The walk stops at the first one, so it costs at most one step per
// taken address and gateway, whatever the size of the set.
func (s RangeSet) hasFree(p *Pool, taken map[netip.Addr]bool) bool {
	for a := range s.walk(netip.Addr{}) {
		if !taken[a] && !p.isGateway(a) {
			return true
		}
	}
	return false
}
