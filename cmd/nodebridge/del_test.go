package main_test

import (
	"slices"
	"testing"

	"github.com/nodebridge/nodebridge/internal/netnstest"
)

// TestDel: DEL of both pods leaves no veth, allocation or rule, and a
// second DEL of each still succeeds.
func TestDel(t *testing.T) {
	t.Parallel()
	f := newFixture(t, podSubnet)
	a, b := f.newPod(), f.newPod()
	f.add(a)
	f.add(b)
	if n := len(f.nbRules()); n == 0 {
		t.Fatal("no NB- rules in the node after ADD with ipMasq")
	}
	f.del(a)
	f.del(b)
	f.assertClean()

	t.Run("twice", func(t *testing.T) {
		f.del(a)
		f.del(b)
		f.assertClean()
	})
}

// TestDelGoneNetns is a runtime cleaning up after the pod's netns was
// already destroyed: DEL must succeed and still free the allocation.
func TestDelGoneNetns(t *testing.T) {
	t.Parallel()
	f := newFixture(t, podSubnet)
	p := f.newPod()
	f.add(p)
	if n := len(f.allocations()); n != 1 {
		t.Fatalf("%d allocations after ADD, want 1", n)
	}
	netnstest.MustRun(t, "ip", "netns", "del", p.ns)

	f.del(p)
	f.assertClean()
}

// TestDelWithoutNetns is DEL with CNI_NETNS unset, which the spec allows.
func TestDelWithoutNetns(t *testing.T) {
	t.Parallel()
	f := newFixture(t, podSubnet)
	p := f.newPod()
	res, _ := f.add(p)
	c := f.callFor("DEL", p, f.conf("1.1.0"))
	c.Netns = ""
	mustSucceed(t, f.run(c), "DEL without CNI_NETNS")
	if a := f.allocations(); len(a) > 0 {
		t.Errorf("allocations left after DEL without CNI_NETNS: %v", a)
	}
	if slices.Contains(vethNames(t, f.node), res.Interfaces[1].Name) {
		t.Errorf("host veth %s left after DEL without CNI_NETNS", res.Interfaces[1].Name)
	}
}
