package rules

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

func elementList(es []policyElement) []string {
	var out []string
	for _, e := range es {
		out = append(out, fmt.Sprintf("%s %s %d-%d %d-%d", e.Pod, e.Peer, e.ProtoLo, e.ProtoHi, e.PortLo, e.PortHi))
	}
	return out
}

func TestPolicyElements(t *testing.T) {
	pod, other := netip.MustParseAddr("10.244.1.2"), netip.MustParseAddr("10.244.1.3")
	pfx := netip.MustParsePrefix
	for _, tc := range []struct {
		name   string
		allows []Allow
		want   []string
	}{
		{"a wider allow swallows a narrower one", []Allow{
			{Pod: pod, Peer: pfx("10.0.0.0/8")},
			{Pod: pod, Peer: pfx("10.244.2.6/32"), Proto: ProtoTCP, PortLo: 80, PortHi: 80}},
			[]string{"10.244.1.2 10.0.0.0/8 0-255 0-65535"}},
		{"overlapping port ranges of one peer join", []Allow{
			{Pod: pod, Peer: pfx("10.244.2.6/32"), Proto: ProtoTCP, PortLo: 80, PortHi: 90},
			{Pod: pod, Peer: pfx("10.244.2.6/32"), Proto: ProtoTCP, PortLo: 85, PortHi: 100}},
			[]string{"10.244.1.2 10.244.2.6/32 6-6 80-100"}},
		{"a narrower peer on more ports splits the axis", []Allow{
			{Pod: pod, Peer: pfx("10.244.0.0/16"), Proto: ProtoTCP, PortLo: 80, PortHi: 80},
			{Pod: pod, Peer: pfx("10.244.2.6/32"), Proto: ProtoTCP, PortLo: 70, PortHi: 90}},
			[]string{"10.244.1.2 10.244.2.6/32 6-6 70-79", "10.244.1.2 10.244.0.0/16 6-6 80-80", "10.244.1.2 10.244.2.6/32 6-6 81-90"}},
		{"pods apart, protocols apart", []Allow{
			{Pod: other, Peer: pfx("0.0.0.0/0"), Proto: ProtoUDP, PortLo: 53, PortHi: 53},
			{Pod: pod, Peer: pfx("0.0.0.0/0"), Proto: ProtoSCTP}},
			[]string{"10.244.1.2 0.0.0.0/0 132-132 0-65535", "10.244.1.3 0.0.0.0/0 17-17 53-53"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := elementList(policyElements(tc.allows)); !slices.Equal(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// Random Allows: the elements never overlap, and a random packet is
// allowed by an element exactly when it is by an Allow.
func TestPolicyElementsExact(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	pods := []netip.Addr{netip.MustParseAddr("10.244.1.2"), netip.MustParseAddr("10.244.1.3")}
	randPrefix := func() netip.Prefix {
		a := netip.AddrFrom4([4]byte{10, byte(r.IntN(4)), byte(r.IntN(4)), byte(r.IntN(4))})
		return netip.PrefixFrom(a, []int{8, 14, 16, 22, 24, 30, 32}[r.IntN(7)]).Masked()
	}
	for round := range 300 {
		var allows []Allow
		for range 1 + r.IntN(6) {
			a := Allow{Pod: pods[r.IntN(2)], Peer: randPrefix()}
			if r.IntN(4) > 0 {
				a.Proto = []uint8{ProtoTCP, ProtoUDP, ProtoSCTP}[r.IntN(3)]
				if r.IntN(3) > 0 {
					a.PortLo = uint16(1 + r.IntN(20))
					a.PortHi = a.PortLo + uint16(r.IntN(10))
				}
			}
			allows = append(allows, a)
		}
		es := policyElements(allows)
		for i, e := range es {
			for _, f := range es[i+1:] {
				if e.Pod == f.Pod && e.Peer.Overlaps(f.Peer) && e.ProtoLo <= f.ProtoHi && f.ProtoLo <= e.ProtoHi &&
					e.PortLo <= f.PortHi && f.PortLo <= e.PortHi {
					t.Fatalf("round %d: %v and %v overlap (allows %v)", round, e, f, allows)
				}
			}
		}
		for range 200 {
			pod, src := pods[r.IntN(2)], netip.AddrFrom4([4]byte{10, byte(r.IntN(4)), byte(r.IntN(4)), byte(r.IntN(4))})
			proto, port := []int{1, ProtoTCP, ProtoUDP, ProtoSCTP}[r.IntN(4)], r.IntN(35)
			want := slices.ContainsFunc(allows, func(a Allow) bool {
				p, q := allowSpans(a)
				return a.Pod == pod && a.Peer.Contains(src) && p.lo <= proto && proto <= p.hi && q.lo <= port && port <= q.hi
			})
			got := slices.ContainsFunc(es, func(e policyElement) bool {
				return e.Pod == pod && e.Peer.Contains(src) && int(e.ProtoLo) <= proto && proto <= int(e.ProtoHi) &&
					int(e.PortLo) <= port && port <= int(e.PortHi)
			})
			if got != want {
				t.Fatalf("round %d: %s from %s proto %d port %d: elements %v, allows %v\nallows %v\nelements %v",
					round, pod, src, proto, port, got, want, allows, elementList(es))
			}
		}
	}
}
