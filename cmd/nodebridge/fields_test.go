package main_test

import (
	"slices"
	"strings"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// fieldCase is one config field (or runtime input) and what the kernel and
// the result must show after an ADD that uses it.
type fieldCase struct {
	name  string
	edit  func(f *fixture, conf map[string]any, c *call)
	check func(t *testing.T, f *fixture, p pod, res *current.Result)
}

// runFieldCases ADDs one pod per case in its own node, checks it, then DELs
// it with the same request and expects nothing left.
func runFieldCases(t *testing.T, cases []fieldCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, podSubnet)
			p := f.newPod()
			conf := f.conf("1.1.0")
			c := f.callFor("ADD", p, conf)
			tc.edit(f, conf, &c)
			c.Conf = mustJSON(t, conf)
			res := mustResult(t, f.run(c), "1.1.0")
			tc.check(t, f, p, res)
			c.Command = "DEL"
			mustSucceed(t, f.run(c), "DEL")
			f.assertClean()
		})
	}
}

// TestBridgeFields checks each bridge-level field on the kernel and the result.
func TestBridgeFields(t *testing.T) {
	t.Parallel()
	mac := "02:42:0a:f4:00:99"
	runFieldCases(t, []fieldCase{
		{"isDefaultGateway", func(_ *fixture, conf map[string]any, _ *call) {
			conf["isGateway"], conf["isDefaultGateway"] = false, true
			delete(conf["ipam"].(map[string]any), "routes")
		}, func(t *testing.T, f *fixture, p pod, res *current.Result) {
			if via, _ := route(t, p.ns, "default"); via != "10.244.0.1" || !hasDefaultRoute(res) {
				t.Errorf("default route via %q, result routes %v; want via 10.244.0.1 in both", via, res.Routes)
			}
			if br := ipAddrs(t, f.node, "dev", f.bridge)[0]; !br.hasAddr("10.244.0.1", 24) {
				t.Errorf("isDefaultGateway without isGateway: bridge lacks 10.244.0.1/24: %+v", br.AddrInfo)
			}
		}},
		{"mtu", func(_ *fixture, conf map[string]any, _ *call) { conf["mtu"] = 1400 },
			func(t *testing.T, f *fixture, p pod, res *current.Result) {
				for _, l := range []struct{ netns, dev string }{{p.ns, p.ifName}, {f.node, res.Interfaces[1].Name}, {f.node, f.bridge}} {
					if mtu := sysfs(t, l.netns, l.dev, "mtu"); mtu != "1400" {
						t.Errorf("%s mtu %s, want 1400", l.dev, mtu)
					}
				}
			}},
		{"hairpinMode", func(_ *fixture, conf map[string]any, _ *call) { conf["hairpinMode"] = true },
			wantBrport("hairpin_mode", "1", "isolated", "0")},
		{"portIsolation", func(_ *fixture, conf map[string]any, _ *call) { conf["portIsolation"] = true },
			wantBrport("isolated", "1", "hairpin_mode", "0")},
		{"promiscMode", func(_ *fixture, conf map[string]any, _ *call) { conf["promiscMode"] = true },
			func(t *testing.T, f *fixture, _ pod, res *current.Result) {
				if br := ipAddrs(t, f.node, "dev", f.bridge)[0]; !slices.Contains(br.Flags, "PROMISC") {
					t.Errorf("bridge %s flags %v, want PROMISC", f.bridge, br.Flags)
				}
				wantBrport("hairpin_mode", "0")(t, f, pod{}, res)
			}},
		{"defaults: no hairpin, isolation or promiscuous mode", func(*fixture, map[string]any, *call) {},
			func(t *testing.T, f *fixture, p pod, res *current.Result) {
				if br := ipAddrs(t, f.node, "dev", f.bridge)[0]; slices.Contains(br.Flags, "PROMISC") {
					t.Errorf("bridge %s flags %v without promiscMode", f.bridge, br.Flags)
				}
				wantBrport("hairpin_mode", "0", "isolated", "0")(t, f, p, res)
			}},
		{"ipMasq false", func(_ *fixture, conf map[string]any, _ *call) { conf["ipMasq"] = false },
			func(t *testing.T, f *fixture, _ pod, _ *current.Result) {
				if r := f.nbRules(); len(r) > 0 {
					t.Errorf("rules installed without ipMasq: %v", r)
				}
			}},
		{"runtimeConfig.mac", func(_ *fixture, conf map[string]any, _ *call) {
			conf["runtimeConfig"] = map[string]any{"mac": mac}
		}, wantMAC(mac)},
		{"args.cni.mac", func(_ *fixture, conf map[string]any, _ *call) {
			conf["args"] = map[string]any{"cni": map[string]any{"mac": mac}}
		}, wantMAC(mac)},
		{"CNI_ARGS MAC=", func(_ *fixture, _ map[string]any, c *call) { c.Args = "IgnoreUnknown=1;MAC=" + mac }, wantMAC(mac)},
	})
}

// wantBrport checks attribute/value pairs of the host veth's brport
// directory in sysfs.
func wantBrport(kv ...string) func(*testing.T, *fixture, pod, *current.Result) {
	return func(t *testing.T, f *fixture, _ pod, res *current.Result) {
		t.Helper()
		for i := 0; i+1 < len(kv); i += 2 {
			if got := sysfs(t, f.node, res.Interfaces[1].Name, "brport/"+kv[i]); got != kv[i+1] {
				t.Errorf("host veth %s brport/%s = %s, want %s", res.Interfaces[1].Name, kv[i], got, kv[i+1])
			}
		}
	}
}

// wantMAC checks the container interface has mac, in the kernel and the result.
func wantMAC(mac string) func(*testing.T, *fixture, pod, *current.Result) {
	return func(t *testing.T, _ *fixture, p pod, res *current.Result) {
		if got := ipAddrs(t, p.ns, "dev", p.ifName)[0].Address; got != mac || res.Interfaces[2].Mac != mac {
			t.Errorf("%s MAC %s, result %s, want %s", p.ifName, got, res.Interfaces[2].Mac, mac)
		}
	}
}

// TestForceAddress: a bridge that already has another IPv4 address is a
// conflict (code 7, naming forceAddress) unless forceAddress replaces it.
func TestForceAddress(t *testing.T) {
	t.Parallel()
	f := newFixture(t, podSubnet)
	testenv.Run(t, f.node, "ip", "link", "add", f.bridge, "type", "bridge")
	testenv.Run(t, f.node, "ip", "addr", "add", "10.99.0.1/24", "dev", f.bridge)
	p := f.newPod()

	e := mustError(t, f.run(f.callFor("ADD", p, f.conf("1.1.0"))))
	if e.Code != 7 || !strings.Contains(e.Msg, "forceAddress") {
		t.Errorf("ADD onto a bridge with another address: code %d %q, want 7 naming forceAddress", e.Code, e.Msg)
	}
	if a := f.allocations(); len(a) > 0 {
		t.Errorf("failed ADD kept allocations %v", a)
	}

	conf := f.conf("1.1.0")
	conf["forceAddress"] = true
	mustResult(t, f.run(f.callFor("ADD", p, conf)), "1.1.0")
	br := ipAddrs(t, f.node, "dev", f.bridge)[0]
	if !br.hasAddr("10.244.0.1", 24) || br.hasAddr("10.99.0.1", 24) {
		t.Errorf("forceAddress: bridge addresses %+v, want 10.244.0.1/24 instead of 10.99.0.1/24", br.AddrInfo)
	}
	mustSucceed(t, f.run(f.callFor("DEL", p, conf)), "DEL")
	f.assertClean()
}
