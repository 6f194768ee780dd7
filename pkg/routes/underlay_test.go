package routes

import (
	"net/netip"
	"testing"
)

// TestOnLink: a gateway is on-link inside a prefix connected on the
// underlay link, but never when it is one of the link's own addresses,
// the own InternalIP or a secondary one (a route via the node itself goes
// nowhere; FuzzComputeDesired found a peer claiming a secondary address).
func TestOnLink(t *testing.T) {
	addrs := []Addr{
		{Prefix: netip.MustParsePrefix("198.18.0.11/24"), LinkIndex: 2, LinkName: "ul0"},
		{Prefix: netip.MustParsePrefix("0.0.0.0/7"), LinkIndex: 2, LinkName: "ul0"},
		{Prefix: netip.MustParsePrefix("10.9.0.1/24"), LinkIndex: 3, LinkName: "other"},
	}
	u := UnderlayOf(netip.MustParseAddr("198.18.0.11"), addrs)
	if u == nil {
		t.Fatal("UnderlayOf found no underlay")
	}
	for _, tc := range []struct {
		gw   string
		want bool
	}{
		{"198.18.0.12", true},  // a peer on the underlay's prefix
		{"1.2.3.4", true},      // a peer in another prefix connected on the link
		{"198.18.0.11", false}, // the own InternalIP
		{"0.0.0.0", false},     // the link's secondary address
		{"10.9.0.2", false},    // connected, but on another link
		{"198.18.1.1", false},  // not connected
	} {
		if got := u.OnLink(netip.MustParseAddr(tc.gw)); got != tc.want {
			t.Errorf("OnLink(%s) = %v, want %v", tc.gw, got, tc.want)
		}
	}
}
