package rules

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"
)

// policyElement is one element of an allow set: traffic between Pod and
// an address in Peer, over a protocol in ProtoLo..ProtoHi, to a port in
// PortLo..PortHi. The elements of a set never overlap: the kernel's
// interval sets of concatenated keys refuse overlapping ones.
type policyElement struct {
	Pod              netip.Addr
	Peer             netip.Prefix
	ProtoLo, ProtoHi uint8
	PortLo, PortHi   uint16
}

// span is a closed interval of protocol numbers or ports.
type span struct{ lo, hi int }

// allowSpans are the protocol and port intervals an Allow covers.
func allowSpans(a Allow) (proto, port span) {
	proto, port = span{0, 255}, span{0, 65535}
	if a.Proto != 0 {
		proto = span{int(a.Proto), int(a.Proto)}
	}
	if a.PortLo != 0 || a.PortHi != 0 {
		port = span{int(a.PortLo), int(a.PortHi)}
	}
	return proto, port
}

// segments cuts full into the elementary intervals the given spans'
// bounds delimit, in order.
func segments(full span, spans []span) []span {
	cuts := []int{full.lo, full.hi + 1}
	for _, s := range spans {
		cuts = append(cuts, max(s.lo, full.lo), min(s.hi, full.hi)+1)
	}
	slices.Sort(cuts)
	cuts = slices.Compact(cuts)
	var out []span
	for i := 0; i+1 < len(cuts); i++ {
		if cuts[i] >= full.lo && cuts[i+1]-1 <= full.hi {
			out = append(out, span{cuts[i], cuts[i+1] - 1})
		}
	}
	return out
}

// within reports whether s lies within t.
func (s span) within(t span) bool { return t.lo <= s.lo && s.hi <= t.hi }

// policyElements turns Allows into the fewest non-overlapping elements
// allowing exactly the same traffic: per pod, the protocol and port axes
// are cut where any Allow starts or ends, each cell gets the union of the
// peers of the Allows covering it (prefixes inside another dropped, so
// the rest are disjoint), and neighbouring port cells with the same peers
// are joined again.
func policyElements(allows []Allow) []policyElement {
	byPod := map[netip.Addr][]Allow{}
	for _, a := range allows {
		byPod[a.Pod] = append(byPod[a.Pod], a)
	}
	var out []policyElement
	for _, pod := range slices.SortedFunc(maps.Keys(byPod), netip.Addr.Compare) {
		out = append(out, podElements(pod, byPod[pod])...)
	}
	return out
}

// podElements is policyElements for one pod's Allows. Neighbouring
// protocol cells with the same content are joined too.
func podElements(pod netip.Addr, allows []Allow) []policyElement {
	var protos []span
	for _, a := range allows {
		p, _ := allowSpans(a)
		protos = append(protos, p)
	}
	var out []policyElement
	var last []policyElement // the previous protocol cell's, to join with
	for _, ps := range segments(span{0, 255}, protos) {
		cell := protoCell(pod, ps, allows)
		if len(cell) > 0 && len(last) > 0 && int(last[0].ProtoHi)+1 == ps.lo && sameContent(last, cell) {
			for i := range last {
				last[i].ProtoHi = uint8(ps.hi)
			}
			continue
		}
		out = append(out, last...)
		last = cell
	}
	return append(out, last...)
}

// sameContent reports whether two cells hold the same peers and ports.
func sameContent(a, b []policyElement) bool {
	return slices.EqualFunc(a, b, func(x, y policyElement) bool {
		return x.Peer == y.Peer && x.PortLo == y.PortLo && x.PortHi == y.PortHi
	})
}

// protoCell is the elements of one protocol cell: its port axis cut where
// the Allows covering it start or end, each port cell with the outermost
// peers of the Allows covering it, neighbouring port cells with the same
// peers joined.
func protoCell(pod netip.Addr, ps span, allows []Allow) []policyElement {
	var here []Allow
	var ports []span
	for _, a := range allows {
		p, r := allowSpans(a)
		if ps.within(p) {
			here = append(here, a)
			ports = append(ports, r)
		}
	}
	type run struct {
		lo, hi int
		peers  []netip.Prefix
	}
	var runs []run
	for _, rs := range segments(span{0, 65535}, ports) {
		var peers []netip.Prefix
		for _, a := range here {
			if _, r := allowSpans(a); rs.within(r) {
				peers = append(peers, a.Peer)
			}
		}
		peers = outermost(peers)
		if n := len(runs); n > 0 && runs[n-1].hi+1 == rs.lo && slices.Equal(runs[n-1].peers, peers) {
			runs[n-1].hi = rs.hi
			continue
		}
		runs = append(runs, run{rs.lo, rs.hi, peers})
	}
	var out []policyElement
	for _, r := range runs {
		for _, peer := range r.peers {
			out = append(out, policyElement{Pod: pod, Peer: peer, ProtoLo: uint8(ps.lo), ProtoHi: uint8(ps.hi),
				PortLo: uint16(r.lo), PortHi: uint16(r.hi)})
		}
	}
	return out
}

// outermost drops every prefix inside another, and duplicates: what is
// left is disjoint (two prefixes either nest or do not meet), sorted.
func outermost(ps []netip.Prefix) []netip.Prefix {
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		return cmp.Or(cmp.Compare(a.Addr().BitLen(), b.Addr().BitLen()), a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
	})
	var out []netip.Prefix
	for _, p := range ps {
		if n := len(out); n > 0 && out[n-1].Overlaps(p) {
			continue // sorted by address then length: the earlier one holds p
		}
		out = append(out, p)
	}
	return out
}
