package main_test

import (
	"encoding/json"
	"testing"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// TestFaultBridgeDeleted deletes the bridge under two live pods, as an
// operator's `ip link del` would. CHECK of a live pod then fails naming the
// bridge; the next ADD recreates it with its gateway, and that pod works;
// CHECK still reports each older pod, whose port went with the old bridge.
// DEL of every pod leaves nothing.
func TestFaultBridgeDeleted(t *testing.T) {
	t.Parallel()
	f := newFixture(t, podSubnet)
	old := []pod{f.newPod(), f.newPod()}
	hostVeths := map[pod]string{}
	checks := map[pod]map[string]any{}
	for _, p := range old {
		res, raw := f.add(p)
		hostVeths[p] = res.Interfaces[1].Name
		checks[p] = checkConf(f, raw)
	}
	testenv.Run(t, f.node, "ip", "link", "del", f.bridge)
	for _, p := range old {
		f.checkFails(p, checks[p], f.bridge, "with the bridge deleted")
	}

	fresh := f.newPod()
	res, raw := f.add(fresh)
	if br := ipAddrs(t, f.node, "dev", f.bridge); len(br) != 1 || !br[0].hasAddr("10.244.0.1", 24) {
		t.Fatalf("ADD after the bridge was deleted: bridge %s %+v, want it back with 10.244.0.1/24", f.bridge, br)
	}
	mustSucceed(t, f.run(f.callFor("CHECK", fresh, checkConf(f, raw))), "CHECK of the pod added after the bridge came back")
	ping(t, fresh.ns, "10.244.0.1")
	if got := ipAddrs(t, f.node, "dev", res.Interfaces[1].Name); got[0].Master != f.bridge {
		t.Errorf("new pod's host veth has master %q, want %s", got[0].Master, f.bridge)
	}
	for _, p := range old {
		f.checkFails(p, checks[p], hostVeths[p], "after the bridge was recreated without its old ports")
	}

	for _, p := range append(old, fresh) {
		f.del(p)
	}
	f.assertClean()
}

// checkConf is the 1.1.0 config for a CHECK, carrying the ADD's stdout as
// prevResult.
func checkConf(f *fixture, addStdout json.RawMessage) map[string]any {
	conf := f.conf("1.1.0")
	conf["prevResult"] = addStdout
	return conf
}
