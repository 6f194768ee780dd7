package main_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/nodebridge/nodebridge/internal/testenv"
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
	testenv.MustRun(t, "ip", "netns", "del", p.ns)

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

// TestDelLeavesVethToReaper: DEL answers with the address released and the
// pod's veth out of service (host end down, pod end without carrier); the
// reaper it started deletes the pair soon after. ADD of the same attachment
// right after DEL succeeds whether or not the reaper has finished.
func TestDelLeavesVethToReaper(t *testing.T) {
	t.Parallel()
	f := newFixture(t, podSubnet)
	p := f.newPod()
	res, _ := f.add(p)
	host := res.Interfaces[1].Name
	if h := hostVeth(p.id, p.ifName); h != host { // else the harness waits for nothing
		t.Fatalf("host veth %s, the harness derives %s", host, h)
	}

	mustSucceed(t, rawRun(t, f.node, f.callFor("DEL", p, f.conf("1.1.0"))), "DEL "+p.id)
	if a := f.allocations(); len(a) > 0 {
		t.Errorf("allocations right after DEL: %v", a)
	}
	for _, l := range ipAddrs(t, f.node, "type", "veth") {
		if l.IfName == host && slices.Contains(l.Flags, "UP") {
			t.Errorf("host veth %s still up right after DEL: %v", host, l.Flags)
		}
	}
	for _, l := range ipAddrs(t, p.ns) {
		if l.IfName == p.ifName && slices.Contains(l.Flags, "LOWER_UP") {
			t.Errorf("pod interface %s still has carrier right after DEL: %v", p.ifName, l.Flags)
		}
	}
	if err := waitReaped(f.node); err != nil {
		t.Fatal(err)
	}
	if v := vethNames(t, f.node); len(v) > 0 {
		t.Errorf("veths in the node after the reaper: %v", v)
	}
	for _, l := range ipAddrs(t, p.ns) {
		if l.IfName == p.ifName {
			t.Errorf("pod interface %s still in %s after the reaper", p.ifName, p.ns)
		}
	}

	t.Run("ADD right after DEL", func(t *testing.T) {
		for range 3 {
			_, prev := f.add(p)
			mustSucceed(t, rawRun(t, f.node, f.callFor("DEL", p, f.conf("1.1.0"))), "DEL "+p.id)
			_, prev = f.add(p)
			check := f.conf("1.1.0")
			check["prevResult"] = json.RawMessage(prev)
			mustSucceed(t, f.run(f.callFor("CHECK", p, check)), "CHECK after DEL and ADD again")
			f.del(p)
		}
		f.assertClean()
	})
}

// rawRun is one invocation without the harness's wait for the reaper.
func rawRun(t *testing.T, node string, c call) outcome {
	t.Helper()
	o, err := execTool(node, pluginBin, c)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestReapVariableLeaked: NODEBRIDGE_REAP in a runtime's environment does
// not turn a CNI call into a reaper; only the reaper's own argv[0] does.
func TestReapVariableLeaked(t *testing.T) {
	t.Parallel()
	f := newFixture(t, podSubnet)
	p := f.newPod()
	c := f.callFor("ADD", p, f.conf("1.1.0"))
	c.Env = []string{"NODEBRIDGE_REAP=1:lo"}
	res := mustResult(t, f.run(c), "1.1.0")
	if len(res.IPs) != 1 || len(vethNames(t, f.node)) != 1 {
		t.Errorf("ADD with NODEBRIDGE_REAP set: result %v, node veths %v; want one address and one veth", res, vethNames(t, f.node))
	}
	f.del(p)
	f.assertClean()
}
