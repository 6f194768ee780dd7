package main_test

import (
	"sync"
	"testing"
)

// TestParallelAddDel runs 32 ADDs at once, as a node starting many pods does:
// each is its own process contending for the network's lock. All must
// succeed with distinct addresses; 32 DELs at once must then leave nothing.
func TestParallelAddDel(t *testing.T) {
	t.Parallel()
	const n = 32
	f := newFixture(t, podSubnet)
	pods := make([]pod, n)
	for i := range pods {
		pods[i] = f.newPod()
	}

	owner := map[string]string{} // address -> container id
	for i, o := range f.runAll("ADD", pods) {
		res, err := o.result("1.1.0")
		if err != nil {
			t.Errorf("ADD %s: %v", pods[i].id, err)
			continue
		}
		if len(res.IPs) != 1 {
			t.Errorf("ADD %s: %d IPs, want 1", pods[i].id, len(res.IPs))
			continue
		}
		addr := res.IPs[0].Address.IP.String()
		if other, dup := owner[addr]; dup {
			t.Errorf("%s given to both %s and %s", addr, other, pods[i].id)
		}
		owner[addr] = pods[i].id
	}
	if len(owner) != n {
		t.Fatalf("%d distinct addresses for %d pods", len(owner), n)
	}
	if got := len(vethNames(t, f.node)); got != n {
		t.Errorf("%d veths in node, want %d", got, n)
	}
	if got := len(f.allocations()); got != n {
		t.Errorf("%d allocations, want %d", got, n)
	}

	for i, o := range f.runAll("DEL", pods) {
		if o.Code != 0 {
			t.Errorf("DEL %s: %s", pods[i].id, o)
		}
	}
	f.assertClean()
}

// runAll invokes command for every pod at once, each call its own process,
// and returns the outcomes in pod order.
func (f *fixture) runAll(command string, pods []pod) []outcome {
	f.t.Helper()
	calls := make([]call, len(pods))
	for i, p := range pods {
		calls[i] = f.callFor(command, p, f.conf("1.1.0"))
	}
	outs := make([]outcome, len(pods))
	errs := make([]error, len(pods))
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Go(func() { outs[i], errs[i] = invoke(f.node, c) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			f.t.Error(err)
		}
	}
	return outs
}
