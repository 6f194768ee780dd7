package agent

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/nodebridge/nodebridge/pkg/routes"
)

// underlaysOf finds the link of each InternalIP, names an InternalIP on no
// link, and refuses a Node without any.
func TestUnderlaysOf(t *testing.T) {
	addrs := []routes.Addr{
		{Prefix: netip.MustParsePrefix("198.18.0.11/24"), LinkIndex: 3, LinkName: "ul0", MTU: 1400},
		{Prefix: netip.MustParsePrefix("fd00:198:18::11/64"), LinkIndex: 3, LinkName: "ul0", MTU: 1400},
		{Prefix: netip.MustParsePrefix("10.99.0.1/16"), LinkIndex: 4, LinkName: "other0", MTU: 1500},
	}
	ul, err := underlaysOf([2]netip.Addr{netip.MustParseAddr("198.18.0.11"), netip.MustParseAddr("fd00:198:18::11")}, addrs)
	if err != nil {
		t.Fatal(err)
	}
	for f, want := range []string{"198.18.0.0/24", "fd00:198:18::/64"} {
		u := ul[f]
		if u == nil || u.LinkIndex != 3 || u.LinkName != "ul0" || u.MTU != 1400 || !slices.Equal(u.Connected, pfx(t, want)) {
			t.Errorf("%s underlay: got %+v", familyName(f), u)
		}
	}
	for backend, want := range map[string]int{BackendHostGW: 1400, BackendAuto: 1330, BackendVXLAN: 1330} {
		if got := podMTU(backend, ul); got != want {
			t.Errorf("pod MTU with --backend=%s: %d, want %d", backend, got, want)
		}
	}
	if got := podMTU(BackendVXLAN, [2]*routes.Underlay{ul[v4], nil}); got != 1350 {
		t.Errorf("pod MTU with an IPv4 underlay only: %d, want 1350 (1400 less 50)", got)
	}
	if _, err := underlaysOf([2]netip.Addr{netip.MustParseAddr("198.18.0.99")}, addrs); err == nil {
		t.Error("an InternalIP on no link: no error")
	}
	if _, err := underlaysOf([2]netip.Addr{}, addrs); err != errNoInternal {
		t.Errorf("no InternalIP: got %v", err)
	}
}
