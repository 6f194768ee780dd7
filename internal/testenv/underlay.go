package testenv

import (
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Underlay is a throwaway node netns for route tests: its underlay link
// ul0 (a veth whose peer ul0p stays in the netns, MTU 1400) holds
// 198.18.0.11/24 and fd00:198:18::11/64, and Handle is a netlink handle
// into the netns.
type Underlay struct {
	Name   string
	NS     netns.NsHandle
	Handle *netlink.Handle
	Link   int // index of ul0
}

// NewUnderlay makes an Underlay named with prefix; it goes when t ends.
func NewUnderlay(t testing.TB, prefix string) *Underlay {
	t.Helper()
	name := NewNS(t, prefix)
	for _, argv := range [][]string{
		// No dummy module here: a veth pair whose peer stays in the netns.
		{"ip", "link", "add", "ul0", "mtu", "1400", "type", "veth", "peer", "name", "ul0p", "mtu", "1400"},
		{"ip", "link", "set", "ul0p", "up"},
		{"ip", "addr", "add", "198.18.0.11/24", "dev", "ul0"},
		{"ip", "-6", "addr", "add", "fd00:198:18::11/64", "dev", "ul0", "nodad"},
		{"ip", "link", "set", "ul0", "up"},
	} {
		Run(t, name, argv...)
	}
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	l, err := h.LinkByName("ul0")
	if err != nil {
		t.Fatal(err)
	}
	return &Underlay{Name: name, NS: ns, Handle: h, Link: l.Attrs().Index}
}

// Routes lists the routes of both families in the named netns that match
// ip route's selector args, without the kernel's default metric and
// preference.
func Routes(t testing.TB, netns string, sel ...string) []string {
	t.Helper()
	var out []string
	for _, fam := range []string{"-4", "-6"} {
		text := Run(t, netns, append([]string{"ip", fam, "route", "show"}, sel...)...)
		for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
			if l = strings.TrimSpace(strings.ReplaceAll(l, " metric 1024 pref medium", "")); l != "" {
				out = append(out, l)
			}
		}
	}
	return out
}
