package main_test

import (
	"maps"
	"slices"
	"strings"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// TestContainerOptions checks the options that shape the container
// interface (enabledad, disableContainerInterface) on the kernel.
func TestContainerOptions(t *testing.T) {
	t.Parallel()
	dualStack := func(extra map[string]any) func(*fixture, map[string]any, *call) {
		return func(f *fixture, conf map[string]any, _ *call) {
			conf["ipam"] = f.dualStackIPAM()
			for k, v := range extra {
				conf[k] = v
			}
		}
	}
	runFieldCases(t, []fieldCase{
		{"IPv6 skips DAD by default", dualStack(nil), wantDAD(false)},
		{"enabledad", dualStack(map[string]any{"enabledad": true}), wantDAD(true)},
		{"enabledad is off with hairpinMode", dualStack(map[string]any{"enabledad": true, "hairpinMode": true}), wantDAD(false)},
		{"enabledad is off with promiscMode", dualStack(map[string]any{"enabledad": true, "promiscMode": true}), wantDAD(false)},
		{"disableContainerInterface", func(_ *fixture, conf map[string]any, _ *call) {
			conf["disableContainerInterface"] = true
			delete(conf, "ipam")
		}, wantContainerDown},
	})
}

// wantDAD checks the pod's IPv6 address: settled after DAD when on, or
// marked nodad with DAD off on the interface (link-local included) when off.
func wantDAD(on bool) func(*testing.T, *fixture, pod, *current.Result) {
	return func(t *testing.T, _ *fixture, p pod, res *current.Result) {
		t.Helper()
		addrs := globalAddrs6(t, p.ns, p.ifName)
		if len(addrs) != 1 || !strings.HasPrefix(addrs[0].Local, "fd00:244::") || len(res.IPs) != 2 {
			t.Fatalf("pod IPv6 addresses %+v, result IPs %v: want one in %s", addrs, res.IPs, podSubnet6)
		}
		a := addrs[0]
		if a.Tentative || a.DADFailed || a.NoDAD == on {
			t.Errorf("address %s: tentative %t dadfailed %t nodad %t; want settled with nodad %t", a.Local, a.Tentative, a.DADFailed, a.NoDAD, !on)
		}
		want := map[bool]string{true: "1", false: "0"}[on]
		if got := procSys(t, p.ns, "ipv6/conf/"+p.ifName+"/accept_dad"); got != want {
			t.Errorf("accept_dad on %s = %s, want %s", p.ifName, got, want)
		}
	}
}

// wantContainerDown checks a layer-2 pod whose interface was left down: no
// address, the container end down, the host end up on the bridge.
func wantContainerDown(t *testing.T, f *fixture, p pod, res *current.Result) {
	t.Helper()
	ctr := ipAddrs(t, p.ns, "dev", p.ifName)[0]
	if slices.Contains(ctr.Flags, "UP") || len(res.IPs) != 0 {
		t.Errorf("container %s flags %v, result IPs %v: want it down, without addresses", p.ifName, ctr.Flags, res.IPs)
	}
	for _, a := range ctr.AddrInfo {
		if !strings.HasPrefix(a.Local, "fe80:") {
			t.Errorf("container %s has address %s/%d", p.ifName, a.Local, a.PrefixLen)
		}
	}
	host := ipAddrs(t, f.node, "dev", res.Interfaces[1].Name)[0]
	if !slices.Contains(host.Flags, "UP") || host.Master != f.bridge {
		t.Errorf("host veth %s flags %v master %q: want up on %s", host.IfName, host.Flags, host.Master, f.bridge)
	}
	if res.Interfaces[2].Mac != ctr.Address {
		t.Errorf("result container MAC %s, kernel %s", res.Interfaces[2].Mac, ctr.Address)
	}
}

// TestOptionConflicts: settings the reference refuses together get code 7
// naming both, before anything is touched: hairpinMode with promiscMode, and
// a container interface left down with IPAM.
func TestOptionConflicts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		set   map[string]any
		names []string
	}{
		{"hairpinMode and promiscMode", map[string]any{"hairpinMode": true, "promiscMode": true}, []string{"hairpinMode", "promiscMode"}},
		{"disableContainerInterface with ipam", map[string]any{"disableContainerInterface": true}, []string{"disableContainerInterface", "ipam"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, podSubnet)
			p := f.newPod()
			conf := f.conf("1.1.0")
			maps.Copy(conf, tt.set)
			e := mustError(t, f.run(f.callFor("ADD", p, conf)))
			if e.Code != 7 || !strings.Contains(e.Msg, tt.names[0]) || !strings.Contains(e.Msg, tt.names[1]) {
				t.Errorf("ADD: code %d %q, want 7 naming %v", e.Code, e.Msg, tt.names)
			}
			f.assertClean()
			if linkExists(t, f.node, f.bridge) {
				t.Errorf("bridge %s created by a refused ADD", f.bridge)
			}
			if out := testenv.Run(t, p.ns, "ip", "-o", "link", "show"); strings.Contains(out, p.ifName) {
				t.Errorf("pod has %s after a refused ADD:\n%s", p.ifName, out)
			}
		})
	}
}
