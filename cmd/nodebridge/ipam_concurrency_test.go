package main_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// TestParallelAdd64 starts 64 pods at once, each ADD its own process: 64
// distinct addresses, each recorded for the pod that got it.
func TestParallelAdd64(t *testing.T) {
	t.Parallel()
	const n = 64
	f := newFixture(t, podSubnet)
	pods := f.newPods(n)
	want := map[string]string{} // address -> owner
	for i, o := range f.runAll("ADD", pods) {
		res, err := o.result("1.1.0")
		if err != nil {
			t.Errorf("ADD %s: %v", pods[i].id, err)
			continue
		}
		addr := res.IPs[0].Address.IP.String()
		if other, dup := want[addr]; dup {
			t.Errorf("%s given to both %q and %s", addr, other, pods[i].id)
		}
		want[addr] = pods[i].owner()
	}
	if len(want) != n {
		t.Errorf("%d distinct addresses for %d pods", len(want), n)
	}
	f.wantRecords("after 64 parallel ADDs", want)
	if got := len(vethNames(t, f.node)); got != n {
		t.Errorf("%d veths in node, want %d", got, n)
	}
	for i, o := range f.runAll("DEL", pods) {
		mustSucceed(t, o, "DEL "+pods[i].id)
	}
	f.assertNoAttachments()
}

// exhaustSubnet has 13 pod addresses: 16 less network, broadcast and gateway.
const exhaustSubnet = "10.244.0.0/28"

// TestParallelExhaustion races 20 ADDs for the 13 addresses of a /28:
// exactly 13 succeed, the others fail with a CNI error saying the range has
// no free address and leave nothing behind. STATUS answers 50 while the
// pool is full, and succeeds once one pod is gone.
func TestParallelExhaustion(t *testing.T) {
	t.Parallel()
	f := newFixture(t, exhaustSubnet)
	pods := f.newPods(20)
	var won []pod
	var hostVeths []string
	records := map[string]string{}
	for i, o := range f.runAll("ADD", pods) {
		p := pods[i]
		if o.Code != 0 {
			f.wantExhausted(p, o)
			continue
		}
		res := mustResult(t, o, "1.1.0")
		won = append(won, p)
		hostVeths = append(hostVeths, res.Interfaces[1].Name)
		records[res.IPs[0].Address.IP.String()] = p.owner()
	}
	if len(won) != 13 {
		t.Errorf("%d of 20 ADDs succeeded in a /28, want 13", len(won))
	}
	f.wantRecords("after racing 20 ADDs for 13 addresses", records)
	slices.Sort(hostVeths)
	if got := vethNames(t, f.node); !slices.Equal(got, hostVeths) {
		t.Errorf("veths in node %v, want only the winners' %v", got, hostVeths)
	}

	status := call{Command: "STATUS", Conf: mustJSON(t, f.conf("1.1.0"))}
	if e := mustError(t, f.run(status)); e.Code != types.ErrPluginNotAvailable {
		t.Errorf("STATUS with the pool full: code %d (%s), want 50", e.Code, e.Msg)
	}
	if len(won) > 0 {
		f.del(won[0])
		mustSucceed(t, f.run(status), "STATUS once an address is free")
	}
	for i, o := range f.runAll("DEL", pods) {
		mustSucceed(t, o, "DEL "+pods[i].id)
	}
	f.assertNoAttachments()
}

// wantExhausted checks the failed ADD of p: a CNI error saying the range has
// no free address (code 999: the spec has none for that, and the reference
// host-local answers 999 too), and no container interface left in p's netns.
func (f *fixture) wantExhausted(p pod, o outcome) {
	f.t.Helper()
	e := mustError(f.t, o)
	f.t.Logf("ADD %s in a full /28: code %d: %s", p.id, e.Code, e.Msg)
	if e.Code != types.ErrInternal || !strings.Contains(e.Msg, "no free address") || !strings.Contains(e.Msg, exhaustSubnet) {
		f.t.Errorf("ADD %s in a full /28: code %d %q, want 999 saying %s has no free address", p.id, e.Code, e.Msg, exhaustSubnet)
	}
	for _, l := range ipAddrs(f.t, p.ns) {
		if l.IfName != "lo" {
			f.t.Errorf("failed ADD %s left %s in its netns", p.id, l.IfName)
		}
	}
}

// newPods makes n pods.
func (f *fixture) newPods(n int) []pod {
	f.t.Helper()
	pods := make([]pod, n)
	for i := range pods {
		pods[i] = f.newPod()
	}
	return pods
}

// TestLockSerializesNetwork holds the network's lock file the way either
// plugin does (flock on <dataDir>/<network>/lock): nodebridge and reference
// ADDs on that network wait for it, an ADD on another network of the same
// dataDir does not, and the waiters finish with distinct addresses once it
// is released.
func TestLockSerializesNetwork(t *testing.T) {
	t.Parallel()
	f := newFixture(t, podSubnet)
	other := *f // same node and dataDir, another network and bridge
	other.name, other.bridge, other.subnet = f.name+"-b", f.bridge+"b", "10.245.0.0/24"
	unlock := holdLock(t, f.netDir())
	waiting, refWaiting := f.newPod(), f.newPod()
	nb := goInvoke(f.node, pluginBin, f.callFor("ADD", waiting, f.conf("1.1.0")))
	ref := goInvoke(f.node, testenv.Tool(t, "host-local"), f.callFor("ADD", refWaiting, f.conf("1.1.0")))

	free := other.newPod()
	other.add(free) // not held up by the other network's lock
	// Each waiter had the time to finish, had it not waited for the lock.
	select {
	case r := <-nb:
		t.Fatalf("nodebridge ADD finished while the network's lock was held: %v %s", r.err, r.o)
	case r := <-ref:
		t.Fatalf("reference ADD finished while the network's lock was held: %v %s", r.err, r.o)
	case <-time.After(300 * time.Millisecond):
	}

	unlock()
	addrs := map[string]bool{}
	for name, done := range map[string]<-chan invoked{"nodebridge": nb, "reference": ref} {
		select {
		case r := <-done:
			if r.err != nil {
				t.Fatal(r.err)
			}
			addrs[mustResult(t, r.o, "1.1.0").IPs[0].Address.IP.String()] = true
		case <-time.After(20 * time.Second):
			t.Fatalf("%s ADD still waiting 20s after the lock was released", name)
		}
	}
	if len(addrs) != 2 {
		t.Errorf("the two waiting ADDs got addresses %v, want two distinct", addrs)
	}
	f.refDel(refWaiting, f.conf("1.1.0"))
	f.del(waiting)
	other.del(free)
	f.assertNoAttachments()
	other.assertNoAttachments()
}

// invoked is the outcome of a call run in the background.
type invoked struct {
	o   outcome
	err error
}

// goInvoke runs c with bin in the background; the channel gets its outcome.
func goInvoke(node, bin string, c call) <-chan invoked {
	done := make(chan invoked, 1)
	go func() {
		o, err := invokeTool(node, bin, c)
		done <- invoked{o, err}
	}()
	return done
}

// holdLock creates the network directory if needed and takes the flock both
// plugins take on its lock file; the returned func releases it, and runs at
// cleanup if the test did not.
func holdLock(t *testing.T, dir string) (unlock func()) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("flock %s: %v", lock.Name(), err)
	}
	released := false
	unlock = func() {
		if !released {
			released = true
			lock.Close() // closing the only descriptor drops the flock; nothing was written
		}
	}
	t.Cleanup(unlock)
	return unlock
}
