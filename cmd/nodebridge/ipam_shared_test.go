package main_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestReferenceToNodebridge is a node that ran the reference host-local
// switching to nodebridge on the same dataDir: nodebridge keeps every
// allocation, hands none out twice, and its DEL releases the reference's.
// The reference keeps changing the directory between nodebridge calls, so
// each call after one must see the truth, not what nodebridge last indexed.
func TestReferenceToNodebridge(t *testing.T) {
	t.Parallel()
	f := newFixture(t, podSubnet)
	conf := f.conf("1.1.0")
	r0, r1, r2, n, y, x := f.newPod(), f.newPod(), f.newPod(), f.newPod(), f.newPod(), f.newPod()

	for i, p := range []pod{r0, r1, r2} {
		if got, want := f.refAdd(p, conf, ""), []string{"10.244.0.2", "10.244.0.3", "10.244.0.4"}[i]; got != want {
			t.Fatalf("reference ADD %d on an empty network: %s, want %s", i, got, want)
		}
	}
	// Round-robin goes on from the reference's last_reserved_ip.0.
	if got := f.addrOf(n, conf, ""); got != "10.244.0.5" {
		t.Fatalf("nodebridge ADD after three reference ADDs: %s, want the 4th address 10.244.0.5", got)
	}
	// The reference reads nodebridge's record and last_reserved_ip.0.
	if got := f.refAdd(y, conf, ""); got != "10.244.0.6" {
		t.Fatalf("reference ADD after nodebridge's: %s, want 10.244.0.6", got)
	}
	// A runtime retrying an ADD that the reference served: same address,
	// no new record, even for y, allocated after nodebridge last looked.
	for _, tc := range []struct {
		p    pod
		want string
	}{{y, "10.244.0.6"}, {r0, "10.244.0.2"}} {
		if got := f.addrOf(tc.p, conf, ""); got != tc.want {
			t.Errorf("nodebridge ADD of %s, allocated by the reference: %s, want its %s", tc.p.id, got, tc.want)
		}
	}
	f.wantRecords("after nodebridge ADDs of reference allocations", map[string]string{
		"10.244.0.2": r0.owner(), "10.244.0.3": r1.owner(), "10.244.0.4": r2.owner(),
		"10.244.0.5": n.owner(), "10.244.0.6": y.owner(),
	})

	f.del(r1) // never attached by nodebridge: its DEL still frees the reference's record
	if _, ok := f.records()["10.244.0.3"]; ok {
		t.Errorf("nodebridge DEL of %s left the reference's 10.244.0.3", r1.id)
	}
	f.reusedBehindOurBack(r2, x, conf)

	for _, p := range []pod{r0, r2, n, y, x} {
		f.del(p)
	}
	f.assertNoAttachments()
}

// reusedBehindOurBack has the reference free old's address and hand it to
// another pod, after nodebridge learnt who held it: nodebridge's DEL of old
// must not free the new holder's record, and its ADD of old must not return
// that address.
func (f *fixture) reusedBehindOurBack(old, other pod, conf map[string]any) {
	t := f.t
	t.Helper()
	recs := f.records()
	var held string
	for a, owner := range recs {
		if owner == old.owner() {
			held = a
		}
	}
	if held == "" {
		t.Fatalf("%s holds no record: %s", old.id, showRecords(recs))
	}
	f.refDel(old, conf)
	if got := f.refAdd(other, conf, "IP="+held); got != held {
		t.Fatalf("reference ADD of %s requesting %s got %s", other.id, held, got)
	}
	f.del(old)
	if got := f.records()[held]; got != other.owner() {
		t.Errorf("nodebridge DEL of %s, whose %s the reference gave to %s: record now %q, want %q",
			old.id, held, other.id, got, other.owner())
	}
	got := f.addrOf(old, conf, "")
	if got == held {
		t.Errorf("nodebridge ADD of %s returned %s, which the reference gave to %s", old.id, got, other.id)
	}
	if owner := f.records()[got]; owner != old.owner() {
		t.Errorf("nodebridge ADD of %s returned %s, recorded for %q", old.id, got, owner)
	}
}

// TestNodebridgeToReference is the other way: the reference host-local reads
// what nodebridge wrote, never collides with it, and its DEL releases
// nodebridge's allocations; nodebridge then sees the address gone.
func TestNodebridgeToReference(t *testing.T) {
	t.Parallel()
	f := newFixture(t, podSubnet)
	conf := f.conf("1.1.0")
	n0, n1, n2, r0, r1 := f.newPod(), f.newPod(), f.newPod(), f.newPod(), f.newPod()
	add0 := f.run(f.callFor("ADD", n0, conf))
	if got := mustResult(t, add0, "1.1.0").IPs[0].Address.IP.String(); got != "10.244.0.2" {
		t.Fatalf("nodebridge ADD on an empty network: %s, want 10.244.0.2", got)
	}
	if got := f.addrOf(n1, conf, ""); got != "10.244.0.3" {
		t.Fatalf("second nodebridge ADD: %s, want 10.244.0.3", got)
	}
	if got := f.refAdd(r0, conf, ""); got != "10.244.0.4" {
		t.Errorf("reference ADD after nodebridge's two: %s, want 10.244.0.4", got)
	}

	f.refRefuses("requesting nodebridge's 10.244.0.2", f.callFor("ADD", r1, conf), "IP=10.244.0.2", "10.244.0.2")
	f.refRefuses("for an attachment nodebridge served", f.callFor("ADD", n1, conf), "", "10.244.0.3")
	check := f.conf("1.1.0")
	check["prevResult"] = json.RawMessage(add0.Stdout)
	mustSucceed(t, f.refHostLocal(f.callFor("CHECK", n0, check)), "reference CHECK of nodebridge's allocation")
	f.wantRecords("after the reference's refused ADDs", map[string]string{
		"10.244.0.2": n0.owner(), "10.244.0.3": n1.owner(), "10.244.0.4": r0.owner(),
	})

	f.refDel(n0, conf)
	if _, ok := f.records()["10.244.0.2"]; ok {
		t.Fatalf("reference DEL of %s left nodebridge's record 10.244.0.2", n0.id)
	}
	f.checkFails(n0, check, "10.244.0.2", "after the reference released it")
	f.del(n0) // the veth is still there; the address is already gone
	if got := f.addrOf(n2, conf, "IP=10.244.0.2"); got != "10.244.0.2" {
		t.Errorf("nodebridge ADD requesting the address the reference freed: %s", got)
	}

	f.refDel(r0, conf)
	f.del(n1)
	f.del(n2) // the last attachment: the rules go too
	f.assertNoAttachments()
}

// refRefuses runs a reference ADD that must fail because of what nodebridge
// recorded, with an error naming addr.
func (f *fixture) refRefuses(what string, c call, args, addr string) {
	f.t.Helper()
	c.Args = args
	e := mustError(f.t, f.refHostLocal(c))
	f.t.Logf("reference ADD %s: refused: %s", what, e.Msg)
	if !strings.Contains(e.Msg+" "+e.Details, addr) {
		f.t.Errorf("reference ADD %s: error %q does not name %s", what, e.Msg, addr)
	}
}
