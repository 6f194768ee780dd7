package rules

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

func cellList(cs []peerCell) []string {
	var out []string
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%s-%s %d-%d %d-%d", c.lo, c.hi, c.protoLo, c.protoHi, c.portLo, c.portHi))
	}
	return out
}

// Pods named by the same rules share a class; a class's cells join what
// its rules allow, cut so that they never overlap.
func TestClassify(t *testing.T) {
	a, b, c := netip.MustParseAddr("10.244.1.2"), netip.MustParseAddr("10.244.1.3"), netip.MustParseAddr("10.244.1.4")
	a6 := netip.MustParseAddr("fd00::2")
	pfx := netip.MustParsePrefix
	rs := []Rule{
		{Pods: []netip.Addr{a, b, a6}, Peers: []netip.Prefix{pfx("10.0.0.0/8"), pfx("fd00::/64")}, Ports: []Port{{Proto: ProtoTCP, Lo: 80, Hi: 80}}},
		{Pods: []netip.Addr{a, b}, Peers: []netip.Prefix{pfx("10.244.2.6/32")}, Ports: []Port{{Proto: ProtoTCP, Lo: 70, Hi: 90}}},
		{Pods: []netip.Addr{a, b}, Peers: []netip.Prefix{pfx("10.244.2.7/32")}},
	}
	pc := classify([]netip.Addr{a, b, c, a6}, rs)
	if len(pc.classes) != 3 {
		t.Fatalf("%d classes, want 3 (a and b, a6, c): %+v", len(pc.classes), pc)
	}
	if pc.pods[0][0].class != pc.pods[0][1].class || pc.pods[0][2].class == pc.pods[0][0].class {
		t.Errorf("classes of a, b, c: %+v", pc.pods[0])
	}
	ab := pc.classes[pc.pods[0][0].class-1]
	want := []string{
		"10.0.0.0-10.244.2.5 6-6 80-80",
		"10.244.2.6-10.244.2.6 6-6 70-90",
		"10.244.2.7-10.244.2.7 0-255 0-65535",
		"10.244.2.8-10.255.255.255 6-6 80-80",
	}
	if got := cellList(ab[0]); !slices.Equal(got, want) {
		t.Errorf("a and b's cells\n got %q\nwant %q", got, want)
	}
	if got := cellList(ab[1]); got != nil {
		t.Errorf("a and b have IPv6 cells: %q", got)
	}
	if got := cellList(pc.classes[pc.pods[1][0].class-1][1]); !slices.Equal(got, []string{"fd00::-fd00::ffff:ffff:ffff:ffff 6-6 80-80"}) {
		t.Errorf("a6's cells: %q", got)
	}
	if cc := pc.classes[pc.pods[0][2].class-1]; cc[0] != nil || cc[1] != nil {
		t.Errorf("c is named by no rule, yet has cells: %+v", cc)
	}
}

// Random rules: each class's cells never overlap, and a random packet of
// an isolated pod passes the pod's class exactly when a rule lets it.
func TestClassifyExact(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	pods := []netip.Addr{netip.MustParseAddr("10.244.1.2"), netip.MustParseAddr("10.244.1.3"), netip.MustParseAddr("10.244.1.4"),
		netip.MustParseAddr("fd00::2")}
	randAddr := func(v6 bool) netip.Addr {
		if v6 {
			return netip.AddrFrom16([16]byte{0xfd, 0, 15: byte(r.IntN(8))})
		}
		return netip.AddrFrom4([4]byte{10, byte(r.IntN(4)), byte(r.IntN(4)), byte(r.IntN(4))})
	}
	randPrefix := func() netip.Prefix {
		if r.IntN(5) == 0 {
			return netip.PrefixFrom(randAddr(true), []int{0, 64, 126, 128}[r.IntN(4)]).Masked()
		}
		return netip.PrefixFrom(randAddr(false), []int{0, 8, 14, 16, 22, 24, 30, 32}[r.IntN(8)]).Masked()
	}
	randPort := func() Port {
		p := Port{Proto: []uint8{ProtoTCP, ProtoUDP, ProtoSCTP}[r.IntN(3)]}
		if r.IntN(3) > 0 {
			p.Lo = uint16(1 + r.IntN(20))
			p.Hi = p.Lo + uint16(r.IntN(10))
		}
		return p
	}
	for round := range 300 {
		var rs []Rule
		for range 1 + r.IntN(6) {
			var rule Rule
			for _, p := range pods {
				if r.IntN(2) == 0 {
					rule.Pods = append(rule.Pods, p)
				}
			}
			for range 1 + r.IntN(3) {
				rule.Peers = append(rule.Peers, randPrefix())
			}
			for range r.IntN(3) {
				rule.Ports = append(rule.Ports, randPort())
			}
			rs = append(rs, rule)
		}
		pc := classify(pods, rs)
		classOf := map[netip.Addr]int{}
		for fi := range pc.pods {
			for _, ac := range pc.pods[fi] {
				classOf[ac.addr] = ac.class
			}
		}
		if len(classOf) != len(pods) {
			t.Fatalf("round %d: %d pods classed, want %d", round, len(classOf), len(pods))
		}
		for _, cls := range pc.classes {
			for _, cells := range cls {
				for i, x := range cells {
					for _, y := range cells[i+1:] {
						if x.lo.Compare(y.hi) <= 0 && y.lo.Compare(x.hi) <= 0 && x.protoLo <= y.protoHi && y.protoLo <= x.protoHi &&
							x.portLo <= y.portHi && y.portLo <= x.portHi {
							t.Fatalf("round %d: cells %+v and %+v overlap (rules %+v)", round, x, y, rs)
						}
					}
				}
			}
		}
		for range 300 {
			pod := pods[r.IntN(len(pods))]
			peer := randAddr(pod.Is6())
			proto, port := []int{1, ProtoTCP, ProtoUDP, ProtoSCTP}[r.IntN(4)], r.IntN(35)
			want := slices.ContainsFunc(rs, func(rule Rule) bool {
				return slices.Contains(rule.Pods, pod) && slices.ContainsFunc(rule.Peers, func(p netip.Prefix) bool { return p.Contains(peer) }) &&
					(len(rule.Ports) == 0 || slices.ContainsFunc(rule.Ports, func(p Port) bool {
						ps, qs := portSpans(p)
						return ps.lo <= proto && proto <= ps.hi && qs.lo <= port && port <= qs.hi
					}))
			})
			got := slices.ContainsFunc(pc.classes[classOf[pod]-1][familyIndex(pod.Is6())], func(c peerCell) bool {
				return c.lo.Compare(peer) <= 0 && peer.Compare(c.hi) <= 0 && int(c.protoLo) <= proto && proto <= int(c.protoHi) &&
					int(c.portLo) <= port && port <= int(c.portHi)
			})
			if got != want {
				t.Fatalf("round %d: %s with %s proto %d port %d: classes say %v, rules %v\nrules %+v\ncells %q",
					round, pod, peer, proto, port, got, want, rs, cellList(pc.classes[classOf[pod]-1][familyIndex(pod.Is6())]))
			}
		}
	}
}
