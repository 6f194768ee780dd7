package main_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// podSubnet6 is the IPv6 pod subnet of the dual-stack tests.
const podSubnet6 = "fd00:244::/64"

// dualStackIPAM is a host-local section with an IPv4 set (podSubnet) and an
// IPv6 set (podSubnet6), each routing its default via the gateway.
func (f *fixture) dualStackIPAM() map[string]any {
	set := func(subnet string) []any { return []any{map[string]any{"subnet": subnet}} }
	return map[string]any{
		"type":    "host-local",
		"dataDir": f.dataDir,
		"ranges":  []any{set(podSubnet), set(podSubnet6)},
	}
}

// sysfs reads /sys/class/net/DEV/ATTR as netns sees it (ip netns exec
// mounts that netns's sysfs).
func sysfs(t *testing.T, netns, dev, attr string) string {
	t.Helper()
	return strings.TrimSpace(testenv.Run(t, netns, "cat", "/sys/class/net/"+dev+"/"+attr))
}

// procSys reads a /proc/sys/net file in netns.
func procSys(t *testing.T, netns, path string) string {
	t.Helper()
	return strings.TrimSpace(testenv.Run(t, netns, "cat", "/proc/sys/net/"+path))
}

// addr6 is one IPv6 address of `ip -j addr` with its DAD flags.
type addr6 struct {
	Local     string `json:"local"`
	PrefixLen int    `json:"prefixlen"`
	Scope     string `json:"scope"`
	Tentative bool   `json:"tentative"`
	NoDAD     bool   `json:"nodad"`
	DADFailed bool   `json:"dadfailed"`
}

// globalAddrs6 lists the global IPv6 addresses of dev in netns.
func globalAddrs6(t *testing.T, netns, dev string) []addr6 {
	t.Helper()
	out := testenv.Run(t, netns, "ip", "-j", "-6", "addr", "show", "dev", dev, "scope", "global")
	var links []struct {
		AddrInfo []addr6 `json:"addr_info"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		t.Fatalf("decode ip -j -6 addr show dev %s in %s: %v\n%s", dev, netns, err, out)
	}
	var addrs []addr6
	for _, a := range links[0].AddrInfo {
		if a.Local != "" { // ip prints an empty object for each address the scope filter drops
			addrs = append(addrs, a)
		}
	}
	return addrs
}

// route6 returns the gateway and device of the single IPv6 route to dst in
// netns, or "" when there is not exactly one.
func route6(t *testing.T, netns, dst string) (gw, dev string) {
	t.Helper()
	var routes []struct {
		Gateway string `json:"gateway"`
		Dev     string `json:"dev"`
	}
	out := testenv.Run(t, netns, "ip", "-j", "-6", "route", "show", dst)
	if err := json.Unmarshal([]byte(out), &routes); err != nil {
		t.Fatalf("decode ip -6 route %s in %s: %v\n%s", dst, netns, err, out)
	}
	if len(routes) != 1 {
		return "", ""
	}
	return routes[0].Gateway, routes[0].Dev
}

// linkExists reports whether netns has a link named dev.
func linkExists(t *testing.T, netns, dev string) bool {
	t.Helper()
	for _, l := range ipAddrs(t, netns) {
		if l.IfName == dev {
			return true
		}
	}
	return false
}
