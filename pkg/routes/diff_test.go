package routes

import (
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
)

// kroute is a kernel proto-78 route as a dump returns it.
func kroute(dst, gw string, link, prio int) netlink.Route {
	_, n, _ := net.ParseCIDR(dst)
	return netlink.Route{Dst: n, Gw: net.ParseIP(gw), LinkIndex: link, Priority: prio, Protocol: Protocol}
}

func want(dst, gw string, link int) Route {
	return Route{Dst: netip.MustParsePrefix(dst), Gw: netip.MustParseAddr(gw), LinkIndex: link, Node: "n"}
}

func TestDiffRoutes(t *testing.T) {
	wanted := map[netip.Prefix]Route{}
	for _, r := range []Route{want("10.244.1.0/24", "198.18.0.12", 7), want("10.244.2.0/24", "198.18.0.13", 7), want("fd00:1::/64", "fd00::12", 7)} {
		wanted[r.Dst] = r
	}
	for _, tc := range []struct {
		name    string
		have    []netlink.Route
		wantPut []string // "dst replace|add"
		wantDel []string
		wantOK  int
	}{
		{name: "empty kernel: add all",
			wantPut: []string{"10.244.1.0/24 add", "10.244.2.0/24 add", "fd00:1::/64 add"}},
		{name: "all in place: nothing to do", wantOK: 3,
			have: []netlink.Route{kroute("10.244.1.0/24", "198.18.0.12", 7, 0), kroute("10.244.2.0/24", "198.18.0.13", 7, 0), kroute("fd00:1::/64", "fd00::12", 7, 1024)}},
		{name: "wrong gateway and wrong link replaced", wantOK: 1,
			have:    []netlink.Route{kroute("10.244.1.0/24", "198.18.0.99", 7, 0), kroute("10.244.2.0/24", "198.18.0.13", 3, 0), kroute("fd00:1::/64", "fd00::12", 7, 1024)},
			wantPut: []string{"10.244.1.0/24 replace", "10.244.2.0/24 replace"}},
		{name: "extras and duplicates deleted", wantOK: 3,
			have: []netlink.Route{kroute("10.244.1.0/24", "198.18.0.12", 7, 0), kroute("10.244.1.0/24", "198.18.0.12", 7, 100),
				kroute("10.244.2.0/24", "198.18.0.13", 7, 0), kroute("fd00:1::/64", "fd00::12", 7, 1024),
				kroute("10.244.9.0/24", "198.18.0.19", 7, 0), {Protocol: Protocol, Family: netlink.FAMILY_V4, Gw: net.ParseIP("198.18.0.1")}},
			wantDel: []string{"10.244.1.0/24", "10.244.9.0/24", "<nil>"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := diffRoutes(wanted, tc.have)
			var put, del []string
			for _, p := range d.put {
				kind := "add"
				if p.was != nil {
					kind = "replace"
				}
				put = append(put, p.want.Dst.String()+" "+kind)
			}
			for _, r := range d.del {
				del = append(del, r.Dst.String())
			}
			slices.Sort(put)
			if !slices.Equal(put, tc.wantPut) || !slices.Equal(del, tc.wantDel) || d.ok != tc.wantOK {
				t.Errorf("got put %q del %q ok %d; want put %q del %q ok %d", put, del, d.ok, tc.wantPut, tc.wantDel, tc.wantOK)
			}
		})
	}
}
