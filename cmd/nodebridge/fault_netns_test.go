package main_test

import (
	"slices"
	"testing"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// TestFaultNetnsGoneAmongLivePods deletes one pod's netns while its
// neighbours live: DEL of that pod succeeds (twice), frees its host veth and
// its address only, and leaves the neighbours whole, CHECK and rules
// included. (TestDelGoneNetns covers a network's only pod.)
func TestFaultNetnsGoneAmongLivePods(t *testing.T) {
	t.Parallel()
	f := newFixture(t, podSubnet)
	gone := f.newPod()
	res, _ := f.add(gone)
	goneVeth, goneAddr := res.Interfaces[1].Name, res.IPs[0].Address.IP.String()
	live := []pod{f.newPod(), f.newPod()}
	var checks []map[string]any
	for _, p := range live {
		_, raw := f.add(p)
		checks = append(checks, checkConf(f, raw))
	}
	rules := f.nbRules()
	testenv.MustRun(t, "ip", "netns", "del", gone.ns)

	for range 2 {
		f.del(gone)
	}
	if v := vethNames(t, f.node); slices.Contains(v, goneVeth) || len(v) != len(live) {
		t.Errorf("veths in the node %v: want only the live pods' (%s gone)", v, goneVeth)
	}
	if a := f.allocations(); slices.Contains(a, goneAddr) || len(a) != len(live) {
		t.Errorf("allocations %v: want only the live pods' (%s freed)", a, goneAddr)
	}
	if got := f.nbRules(); !slices.Equal(got, rules) {
		t.Errorf("rules changed while pods still live:\n%v\nwant:\n%v", got, rules)
	}
	for i, p := range live {
		mustSucceed(t, f.run(f.callFor("CHECK", p, checks[i])), "CHECK of a neighbour")
		f.del(p)
	}
	f.assertClean()
}

// TestFaultNetnsUnmounted is DEL after the runtime unmounted the pod's
// netns but left the file behind: CNI_NETNS names an empty regular file.
// The netns, and the pod's end of the veth with it, is gone, so DEL must
// succeed, as the spec asks of DEL whatever is missing, and free the host
// side; a runtime would otherwise retry a DEL that can never pass.
func TestFaultNetnsUnmounted(t *testing.T) {
	t.Parallel()
	f := newFixture(t, podSubnet)
	p := f.newPod()
	f.add(p)
	testenv.MustRun(t, "umount", testenv.Path(p.ns)) // leaves the mount point: an empty file

	o := f.run(f.callFor("DEL", p, f.conf("1.1.0")))
	if o.Code != 0 {
		t.Errorf("DEL with CNI_NETNS an unmounted netns file: %s", o)
	}
	f.assertClean()
	mustSucceed(t, f.run(f.callFor("DEL", p, f.conf("1.1.0"))), "second DEL")
}
