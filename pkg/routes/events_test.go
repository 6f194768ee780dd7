package routes

import (
	"net/netip"
	"testing"
	"time"
)

// TestOwnDeletes: the event of a route the Syncer deleted is recognised
// once, within the TTL; any other deletion is someone else's.
func TestOwnDeletes(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a, b := netip.MustParsePrefix("10.0.1.0/24"), netip.MustParsePrefix("10.0.2.0/24")
	var o ownDeletes
	o.add(a, t0)
	if o.take(b, t0) {
		t.Error("a deletion the agent did not make was taken as its own")
	}
	if !o.take(a, t0.Add(time.Millisecond)) {
		t.Error("the agent's own deletion was not recognised")
	}
	if o.take(a, t0.Add(2*time.Millisecond)) {
		t.Error("one deletion's event was taken twice")
	}
	o.add(b, t0)
	if o.take(b, t0.Add(ownDeleteTTL+time.Second)) {
		t.Error("an entry past its TTL was taken")
	}
	var none *ownDeletes
	none.add(a, t0)
	if none.take(a, t0) {
		t.Error("a nil ownDeletes took a deletion")
	}
}
