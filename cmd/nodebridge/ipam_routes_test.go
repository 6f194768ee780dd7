package main_test

import (
	"encoding/json"
	"strings"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// kernelRoute is a route as `ip -j route show` prints it.
type kernelRoute struct {
	Dst     string           `json:"dst"`
	Gateway string           `json:"gateway"`
	Dev     string           `json:"dev"`
	Metric  int              `json:"metric"`
	Scope   string           `json:"scope"` // omitted for global
	Metrics []map[string]int `json:"metrics"`
}

// tableRoutes lists the routes of one family in table, keyed by dst.
func tableRoutes(t *testing.T, netns, family, table string) map[string]kernelRoute {
	t.Helper()
	out := testenv.Run(t, netns, "ip", family, "-j", "route", "show", "table", table)
	var list []kernelRoute
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("decode table %s in %s: %v\n%s", table, netns, err, out)
	}
	routes := map[string]kernelRoute{}
	for _, r := range list {
		routes[r.Dst] = r
	}
	return routes
}

// TestIPAMRouteAttributes: ipam.routes' priority, table, scope, mtu and
// advmss reach the pod's routing tables and the result, and CHECK finds
// routes outside the main table.
func TestIPAMRouteAttributes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, podSubnet)
	p := f.newPod()
	conf := f.conf("1.1.0")
	ipam := f.dualStackIPAM()
	ipam["routes"] = []any{
		map[string]any{"dst": "0.0.0.0/0"},
		map[string]any{"dst": "192.0.2.0/24", "priority": 77, "table": 100, "mtu": 1300, "advmss": 1200},
		map[string]any{"dst": "198.51.100.0/24", "gw": "10.244.0.254", "table": 100, "scope": 200},
		map[string]any{"dst": "203.0.113.0/24", "table": 4000, "scope": 0, "priority": 5},
		map[string]any{"dst": "fd99::/64", "table": 100, "priority": 300, "mtu": 1400},
	}
	conf["ipam"] = ipam
	o := f.run(f.callFor("ADD", p, conf))
	res := mustResult(t, o, "1.1.0")

	t100 := tableRoutes(t, p.ns, "-4", "100")
	wantKernelRoute(t, t100, kernelRoute{Dst: "192.0.2.0/24", Gateway: "10.244.0.1", Metric: 77, Metrics: []map[string]int{{"mtu": 1300, "advmss": 1200}}})
	wantKernelRoute(t, t100, kernelRoute{Dst: "198.51.100.0/24", Gateway: "10.244.0.254", Scope: "site"})
	wantKernelRoute(t, tableRoutes(t, p.ns, "-4", "4000"), kernelRoute{Dst: "203.0.113.0/24", Gateway: "10.244.0.1", Metric: 5})
	wantKernelRoute(t, tableRoutes(t, p.ns, "-6", "100"), kernelRoute{Dst: "fd99::/64", Gateway: "fd00:244::1", Metric: 300, Metrics: []map[string]int{{"mtu": 1400}}})
	main := tableRoutes(t, p.ns, "-4", "main")
	for _, dst := range []string{"192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"} {
		if _, ok := main[dst]; ok {
			t.Errorf("route to %s in the main table too", dst)
		}
	}
	wantResultRoutes(t, res)

	check := f.conf("1.1.0")
	check["ipam"] = ipam
	check["prevResult"] = json.RawMessage(o.Stdout)
	mustSucceed(t, f.run(f.callFor("CHECK", p, check)), "CHECK with routes in tables 100 and 4000")
	testenv.Run(t, p.ns, "ip", "route", "del", "203.0.113.0/24", "table", "4000")
	f.checkFails(p, check, "203.0.113.0/24", "after deleting the route from table 4000")

	c := f.callFor("DEL", p, conf)
	mustSucceed(t, f.run(c), "DEL")
	f.assertClean()
}

// wantKernelRoute fails t unless routes holds want (its dev is eth0).
func wantKernelRoute(t *testing.T, routes map[string]kernelRoute, want kernelRoute) {
	t.Helper()
	got, ok := routes[want.Dst]
	want.Dev = "eth0"
	if !ok || got.Gateway != want.Gateway || got.Dev != want.Dev || got.Metric != want.Metric || got.Scope != want.Scope ||
		string(mustJSON(t, got.Metrics)) != string(mustJSON(t, want.Metrics)) {
		t.Errorf("route %s: got %+v (present %t), want %+v", want.Dst, got, ok, want)
	}
}

// wantResultRoutes checks the result carries each route's attributes as
// configured.
func wantResultRoutes(t *testing.T, res *current.Result) {
	t.Helper()
	want := map[string]string{
		"0.0.0.0/0":       "{Dst:{IP:0.0.0.0 Mask:00000000} GW:<nil> MTU:0 AdvMSS:0 Priority:0 Table:<nil> Scope:<nil>}",
		"192.0.2.0/24":    "{Dst:{IP:192.0.2.0 Mask:ffffff00} GW:<nil> MTU:1300 AdvMSS:1200 Priority:77 Table:100 Scope:<nil>}",
		"198.51.100.0/24": "{Dst:{IP:198.51.100.0 Mask:ffffff00} GW:10.244.0.254 MTU:0 AdvMSS:0 Priority:0 Table:100 Scope:200}",
		"203.0.113.0/24":  "{Dst:{IP:203.0.113.0 Mask:ffffff00} GW:<nil> MTU:0 AdvMSS:0 Priority:5 Table:4000 Scope:0}",
		"fd99::/64":       "{Dst:{IP:fd99:: Mask:ffffffffffffffff0000000000000000} GW:<nil> MTU:1400 AdvMSS:0 Priority:300 Table:100 Scope:<nil>}",
	}
	if len(res.Routes) != len(want) {
		t.Errorf("result has %d routes, want %d: %v", len(res.Routes), len(want), res.Routes)
	}
	for _, r := range res.Routes {
		if got := r.String(); got != want[r.Dst.String()] {
			t.Errorf("result route %s:\n got %s\nwant %s", r.Dst.String(), got, want[r.Dst.String()])
		}
	}
}

// TestIPAMRouteAttributesRefused: a value out of the kernel's range is code
// 7, one the kernel will not install code 2, each naming its JSON path,
// and nothing is left behind.
func TestIPAMRouteAttributesRefused(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		route map[string]any
		code  uint
		msg   string
	}{
		{"negative table", map[string]any{"dst": "10.9.0.0/16", "table": -1}, 7, `ipam.routes[1].table "-1"`},
		{"scope past 8 bits", map[string]any{"dst": "10.9.0.0/16", "scope": 300}, 7, `ipam.routes[1].scope "300"`},
		{"priority past 32 bits", map[string]any{"dst": "10.9.0.0/16", "priority": 1 << 32}, 7, `ipam.routes[1].priority "4294967296"`},
		{"scope on IPv6", map[string]any{"dst": "fd99::/64", "scope": 253}, 2, `ipam.routes[1].scope "253"`},
		{"link scope via the gateway", map[string]any{"dst": "10.9.0.0/16", "scope": 253}, 2, `ipam.routes[1].scope "253"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, podSubnet)
			p := f.newPod()
			conf := f.conf("1.1.0")
			ipam := f.dualStackIPAM()
			ipam["routes"] = []any{map[string]any{"dst": "0.0.0.0/0"}, tt.route}
			conf["ipam"] = ipam
			e := mustError(t, f.run(f.callFor("ADD", p, conf)))
			if e.Code != tt.code || !strings.Contains(e.Msg+e.Details, tt.msg) {
				t.Errorf("ADD: code %d (%s %s), want %d naming %s", e.Code, e.Msg, e.Details, tt.code, tt.msg)
			}
			f.assertClean()
		})
	}
}

// TestDelegatedIPAMRouteAttributes: the reference host-local, run from
// CNI_PATH, carries the route attributes into its result, and nodebridge
// applies them as for its own; a scope on an IPv6 route, which the kernel
// would drop, is refused with code 2 and the attachment undone.
func TestDelegatedIPAMRouteAttributes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, podSubnet)
	conf := f.conf("1.1.0")
	ipam := conf["ipam"].(map[string]any)
	ipam["type"] = refHostLocal(t)
	ipam["routes"] = []any{map[string]any{"dst": "192.0.2.0/24", "priority": 77, "table": 100, "scope": 200, "mtu": 1300}}
	p := f.newPod()
	mustResult(t, f.run(f.callFor("ADD", p, conf)), "1.1.0")
	wantKernelRoute(t, tableRoutes(t, p.ns, "-4", "100"),
		kernelRoute{Dst: "192.0.2.0/24", Gateway: "10.244.0.1", Metric: 77, Scope: "site", Metrics: []map[string]int{{"mtu": 1300}}})
	mustSucceed(t, f.run(f.callFor("DEL", p, conf)), "DEL")
	f.assertClean()

	ipam["routes"] = []any{map[string]any{"dst": "fd99::/64", "scope": 200}}
	p = f.newPod()
	e := mustError(t, f.run(f.callFor("ADD", p, conf)))
	if e.Code != 2 || !strings.Contains(e.Msg+e.Details, "route fd99::/64: scope 200") {
		t.Errorf("ADD with a scope on an IPv6 route: code %d (%s %s), want 2 naming the route and scope", e.Code, e.Msg, e.Details)
	}
	if len(vethNames(t, f.node)) != 0 || len(f.allocations()) != 0 {
		t.Errorf("failed ADD left veths %v, allocations %v", vethNames(t, f.node), f.allocations())
	}
	// The network's rules, made with the delegated address, go with the
	// DEL the runtime sends after a failed ADD.
	mustSucceed(t, f.run(f.callFor("DEL", p, conf)), "DEL after the failed ADD")
	f.assertClean()
}
