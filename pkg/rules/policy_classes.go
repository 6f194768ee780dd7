package rules

import (
	"encoding/binary"
	"maps"
	"net/netip"
	"slices"
)

// policyClasses is one direction of a Policy as the kernel holds it.
// Isolated pods named by the same rules fall into one class; each class
// has its own chain and, per family, one set of the (peer range,
// protocols, ports) its rules let pass. A packet costs a hash lookup of
// its pod and one lookup in its class's set, whatever the number of pods
// or policies on the node; the objects grow with the classes and their
// peers, never with pods times peers.
type policyClasses struct {
	pods    [2][]addrClass // by family index, in address order
	classes []classAllows  // by class - 1
}

// addrClass is an isolated pod's address and its class.
type addrClass struct {
	addr  netip.Addr
	class int
}

// classAllows is what a class's pods may exchange, by family index:
// disjoint (peer range, protocols, ports) cells.
type classAllows [2][]peerCell

// peerCell lets traffic between a class's pods and peers lo..hi pass,
// over protocols protoLo..protoHi to ports portLo..portHi.
type peerCell struct {
	lo, hi           netip.Addr
	protoLo, protoHi uint8
	portLo, portHi   uint16
}

// classify groups one direction's isolated pods into classes by the
// rules naming them, and computes each class's cells.
func classify(isolated []netip.Addr, rs []Rule) policyClasses {
	var out policyClasses
	podRules := map[netip.Addr][]int{}
	for _, a := range isolated {
		podRules[a] = nil
	}
	for i, r := range rs {
		for _, a := range r.Pods {
			if l, ok := podRules[a]; ok && (len(l) == 0 || l[len(l)-1] != i) {
				podRules[a] = append(l, i)
			}
		}
	}
	ids := map[string]int{}
	var classRules [][]int // by class - 1: the rules naming its pods
	var families [][2]bool // by class - 1: the families of its pods' addresses
	for _, a := range slices.SortedFunc(maps.Keys(podRules), netip.Addr.Compare) {
		var key []byte
		for _, r := range podRules[a] {
			key = binary.AppendUvarint(key, uint64(r))
		}
		id, ok := ids[string(key)]
		if !ok {
			classRules, families = append(classRules, podRules[a]), append(families, [2]bool{})
			id = len(classRules)
			ids[string(key)] = id
		}
		fi := familyIndex(a.Is6())
		out.pods[fi] = append(out.pods[fi], addrClass{addr: a, class: id})
		families[id-1][fi] = true
	}
	for i, l := range classRules {
		sub := make([]Rule, len(l))
		for j, r := range l {
			sub[j] = rs[r]
		}
		out.classes = append(out.classes, classCells(sub, families[i]))
	}
	return out
}

// classCells is, per family the class's pods have (a class's cells of
// another family are never looked at), what rules let pass as disjoint
// cells: the address space cut where a rule's peer starts or ends, each
// piece with the union of the ports of the rules holding it, neighbouring
// pieces with the same ports joined.
func classCells(rs []Rule, families [2]bool) classAllows {
	var out classAllows
	for fi := range out {
		if !families[fi] {
			continue
		}
		var last []peerCell // the previous piece's cells
		for _, pc := range peerPieces(rs, fi) {
			var ports []Port
			for _, r := range pc.rules {
				if len(rs[r].Ports) == 0 {
					ports = append(ports, Port{})
				}
				ports = append(ports, rs[r].Ports...)
			}
			cells := portCells(ports)
			for i := range cells {
				cells[i].lo, cells[i].hi = pc.lo, pc.hi
			}
			n := len(out[fi])
			if len(last) > 0 && last[0].hi.Next() == pc.lo && sameCells(last, cells) {
				for i := n - len(last); i < n; i++ {
					out[fi][i].hi = pc.hi
				}
				last = out[fi][n-len(last):]
				continue
			}
			out[fi] = append(out[fi], cells...)
			last = out[fi][n:]
		}
	}
	return out
}

// sameCells reports whether two pieces' cells have the same protocols
// and ports.
func sameCells(a, b []peerCell) bool {
	return slices.EqualFunc(a, b, func(x, y peerCell) bool {
		return x.protoLo == y.protoLo && x.protoHi == y.protoHi && x.portLo == y.portLo && x.portHi == y.portHi
	})
}

// piece is a range of peer addresses and the rules whose peers hold it.
type piece struct {
	lo, hi netip.Addr
	rules  []int
}

// peerPieces cuts one family's address space where any rule's peer
// starts or ends, and returns the pieces some rule holds, in order.
func peerPieces(rs []Rule, fi int) []piece {
	var cuts []netip.Addr
	for _, r := range rs {
		for _, p := range r.Peers {
			if familyIndex(p.Addr().Is6()) != fi {
				continue
			}
			cuts = append(cuts, p.Masked().Addr())
			if next := lastAddr(p).Next(); next.IsValid() {
				cuts = append(cuts, next)
			}
		}
	}
	slices.SortFunc(cuts, netip.Addr.Compare)
	cuts = slices.Compact(cuts)
	held := make([][]int, len(cuts)) // rule indexes, by piece
	for i, r := range rs {
		for _, p := range r.Peers {
			if familyIndex(p.Addr().Is6()) != fi {
				continue
			}
			end := lastAddr(p)
			j, _ := slices.BinarySearchFunc(cuts, p.Masked().Addr(), netip.Addr.Compare)
			for ; j < len(cuts) && cuts[j].Compare(end) <= 0; j++ {
				if n := len(held[j]); n == 0 || held[j][n-1] != i {
					held[j] = append(held[j], i)
				}
			}
		}
	}
	var out []piece
	for j, lo := range cuts {
		if len(held[j]) == 0 {
			continue
		}
		hi := lastAddr(netip.PrefixFrom(lo, 0))
		if j+1 < len(cuts) {
			hi = cuts[j+1].Prev()
		}
		out = append(out, piece{lo: lo, hi: hi, rules: held[j]})
	}
	return out
}

// span is a closed interval of protocol numbers or ports.
type span struct{ lo, hi int }

// portSpans are the protocol and port intervals a Port covers.
func portSpans(p Port) (proto, port span) {
	proto, port = span{0, 255}, span{0, 65535}
	if p.Proto != 0 {
		proto = span{int(p.Proto), int(p.Proto)}
		if p.Lo != 0 || p.Hi != 0 {
			port = span{int(p.Lo), int(p.Hi)}
		}
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
		out = append(out, span{cuts[i], cuts[i+1] - 1})
	}
	return out
}

// union joins overlapping and touching spans, in order.
func union(ss []span) []span {
	slices.SortFunc(ss, func(a, b span) int { return a.lo - b.lo })
	var out []span
	for _, s := range ss {
		if n := len(out); n > 0 && s.lo <= out[n-1].hi+1 {
			out[n-1].hi = max(out[n-1].hi, s.hi)
			continue
		}
		out = append(out, s)
	}
	return out
}

// portCells turns Ports into the fewest disjoint (protocols, ports)
// cells covering the same: the protocol axis cut where a Port's starts or
// ends, each piece with the union of the port ranges of the Ports over
// it, neighbouring pieces with the same ranges joined.
func portCells(ports []Port) []peerCell {
	var protos []span
	for _, p := range ports {
		ps, _ := portSpans(p)
		protos = append(protos, ps)
	}
	var out []peerCell
	var last []span // the port ranges of the previous protocol piece
	for _, seg := range segments(span{0, 255}, protos) {
		var here []span
		for _, p := range ports {
			if ps, rs := portSpans(p); ps.lo <= seg.lo && seg.hi <= ps.hi {
				here = append(here, rs)
			}
		}
		here = union(here)
		n := len(out)
		if len(here) > 0 && len(last) > 0 && int(out[n-1].protoHi)+1 == seg.lo && slices.Equal(last, here) {
			for i := n - len(here); i < n; i++ {
				out[i].protoHi = uint8(seg.hi)
			}
			continue
		}
		for _, r := range here {
			out = append(out, peerCell{protoLo: uint8(seg.lo), protoHi: uint8(seg.hi), portLo: uint16(r.lo), portHi: uint16(r.hi)})
		}
		last = here
	}
	return out
}
