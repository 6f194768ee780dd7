package agent

import (
	"slices"
	"testing"

	"github.com/nodebridge/nodebridge/internal/testenv"
	"github.com/nodebridge/nodebridge/pkg/routes"
	"github.com/vishvananda/netlink"
)

// The host cache answers from its last read while nothing changed in the
// node netns, and reads again after any route, address or link change
// there (the agent's own included), and whenever asked for a fresh read.
func TestHostCacheKernel(t *testing.T) {
	th := newHost(t)
	c := hostCache{rt: th.rt}
	c.open(discard())
	defer c.close()
	if c.w == nil {
		t.Fatal("no watch opened")
	}
	get := func(fresh bool) routes.Host {
		t.Helper()
		hs, err := c.get(fresh)
		if err != nil {
			t.Fatal(err)
		}
		return hs
	}
	// Two reads of one state hold equal values; a cached answer is the
	// very same slices.
	same := func(a, b routes.Host) bool {
		return len(a.Addrs) > 0 && len(b.Addrs) > 0 && &a.Addrs[0] == &b.Addrs[0]
	}
	// cached reports whether two gets in a row give the same read. The
	// kernel may change the node on its own now and then (DAD finishing on
	// a new link), so it is asked up to three times: a cache that never
	// holds fails every time.
	cached := func() bool {
		for range 3 {
			if a := get(false); same(a, get(false)) {
				return true
			}
		}
		return false
	}
	first := get(false)
	if !cached() {
		t.Error("unchanged host read again")
	}
	if same(first, get(true)) {
		t.Error("fresh get answered from the cache")
	}
	last := get(false)
	testenv.Run(t, th.name, "ip", "route", "add", "10.244.7.0/24", "via", "198.18.0.17", "proto", "78")
	after := get(false)
	if same(last, after) || !slices.ContainsFunc(after.Ours, func(r netlink.Route) bool { return r.Dst != nil && r.Dst.String() == "10.244.7.0/24" }) {
		t.Errorf("after a route add: cached %t, ours %v", same(last, after), after.Ours)
	}
	testenv.Run(t, th.name, "ip", "addr", "add", "198.18.5.1/24", "dev", "ul0")
	if got := get(false); same(after, got) || !slices.ContainsFunc(got.Addrs, func(a routes.Addr) bool { return a.Prefix.String() == "198.18.5.1/24" }) {
		t.Errorf("after an address add: cached %t, addrs %v", same(after, got), got.Addrs)
	}
	// refresh reads what changed, so that the next get is answered at once.
	testenv.Run(t, th.name, "ip", "route", "del", "10.244.7.0/24")
	c.refresh()
	if r := get(false); len(r.Ours) != 0 {
		t.Errorf("after refresh: ours %v, want none", r.Ours)
	}
	refreshKept := false
	for range 3 {
		before := get(false)
		c.refresh()
		if same(before, get(false)) {
			refreshKept = true
			break
		}
	}
	if !refreshKept {
		t.Error("refresh of an unchanged host read it again")
	}
}
