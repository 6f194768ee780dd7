package main_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"os/exec"
	"strings"
	"sync"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// vlanProbe remembers whether this kernel can make a VLAN-filtering bridge:
// tried once per test binary, in a throwaway netns.
var vlanProbe struct {
	once sync.Once
	why  string // "" when it can
}

// vlanUnsupported returns why the kernel cannot filter VLANs, or "".
func vlanUnsupported(t *testing.T) string {
	t.Helper()
	vlanProbe.once.Do(func() {
		probe := testenv.NewNS(t, "vlanprobe")
		out, err := exec.Command("ip", "-n", probe, "link", "add", "nbprobe0", "type", "bridge", "vlan_filtering", "1").CombinedOutput()
		if err != nil {
			vlanProbe.why = fmt.Sprintf("kernel lacks bridge VLAN filtering: ip link add type bridge vlan_filtering 1: %v: %s", err, strings.TrimSpace(string(out)))
		}
	})
	return vlanProbe.why
}

// TestVlanWithoutKernelSupport runs where the kernel lacks bridge VLAN
// filtering: ADD with a VLAN setting fails with code 2 naming the setting and
// the kernel, and leaves nothing, not even the bridge it would have made.
func TestVlanWithoutKernelSupport(t *testing.T) {
	t.Parallel()
	if vlanUnsupported(t) == "" {
		t.Skip("kernel has bridge VLAN filtering: TestVlan covers it")
	}
	tests := []struct {
		name          string
		edit          func(f *fixture, conf map[string]any)
		bridgeExisted bool
		want          string
	}{
		{"vlan", func(_ *fixture, conf map[string]any) { conf["vlan"] = 100 }, false, "vlan 100"},
		{"vlanTrunk at layer 2", func(_ *fixture, conf map[string]any) {
			conf["vlanTrunk"] = []any{map[string]any{"id": 101}}
			delete(conf, "ipam")
		}, false, "vlanTrunk"},
		{"vlan on an existing bridge", func(f *fixture, conf map[string]any) {
			testenv.Run(t, f.node, "ip", "link", "add", f.bridge, "type", "bridge")
			conf["vlan"] = 100
		}, true, "vlan 100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, podSubnet)
			p := f.newPod()
			conf := f.conf("1.1.0")
			tt.edit(f, conf)
			e := mustError(t, f.run(f.callFor("ADD", p, conf)))
			if e.Code != 2 || !strings.Contains(e.Msg, tt.want) || !strings.Contains(e.Msg, "kernel lacks bridge VLAN filtering") {
				t.Errorf("ADD: code %d %q, want 2 naming %s and the kernel's lack of VLAN filtering", e.Code, e.Msg, tt.want)
			}
			f.assertClean()
			if linkExists(t, f.node, f.bridge) != tt.bridgeExisted {
				t.Errorf("bridge %s exists %t after the failed ADD, want %t", f.bridge, !tt.bridgeExisted, tt.bridgeExisted)
			}
			if out := testenv.Run(t, p.ns, "ip", "-o", "link", "show"); strings.Contains(out, p.ifName) {
				t.Errorf("pod keeps %s after the failed ADD:\n%s", p.ifName, out)
			}
		})
	}
}

// portVlans is a bridge port's VLAN table: id to "pvid untagged",
// "untagged" or "tagged".
type portVlans map[int]string

// vlansOf reads the VLAN table of dev from `bridge -j vlan show`.
func vlansOf(t *testing.T, netns, dev string) portVlans {
	t.Helper()
	out := testenv.Run(t, netns, "bridge", "-j", "vlan", "show", "dev", dev)
	var ports []struct {
		IfName string `json:"ifname"`
		Vlans  []struct {
			Vlan    int      `json:"vlan"`
			VlanEnd int      `json:"vlanEnd"`
			Flags   []string `json:"flags"`
		} `json:"vlans"`
	}
	if err := json.Unmarshal([]byte(out), &ports); err != nil {
		t.Fatalf("decode bridge -j vlan show dev %s in %s: %v\n%s", dev, netns, err, out)
	}
	got := portVlans{}
	for _, p := range ports {
		for _, v := range p.Vlans {
			kind := "tagged"
			switch flags := strings.Join(v.Flags, ","); {
			case strings.Contains(flags, "PVID") && strings.Contains(flags, "Untagged"):
				kind = "pvid untagged"
			case strings.Contains(flags, "PVID"):
				kind = "pvid"
			case strings.Contains(flags, "Untagged"):
				kind = "untagged"
			}
			for id := v.Vlan; id <= max(v.Vlan, v.VlanEnd); id++ {
				got[id] = kind
			}
		}
	}
	return got
}

// wantVlans checks the VLAN table of a port.
func wantVlans(t *testing.T, netns, dev string, want portVlans) {
	t.Helper()
	if got := vlansOf(t, netns, dev); !maps.Equal(got, want) {
		t.Errorf("VLANs of %s: %v, want %v", dev, got, want)
	}
}

// vethPeer is the name of the veth peer of dev, in the same netns.
func vethPeer(t *testing.T, netns, dev string) string {
	t.Helper()
	var links []struct {
		Link string `json:"link"`
	}
	out := testenv.Run(t, netns, "ip", "-j", "link", "show", "dev", dev)
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 || links[0].Link == "" {
		t.Fatalf("peer of %s in %s: %v\n%s", dev, netns, err, out)
	}
	return links[0].Link
}

// TestVlan checks vlan, vlanTrunk and preserveDefaultVlan on the kernel: a
// VLAN-filtering bridge, the host veth's VLAN table, and for a gateway the
// "<bridge>.<vlan>" interface carrying its address, with pod traffic.
func TestVlan(t *testing.T) {
	t.Parallel()
	if why := vlanUnsupported(t); why != "" {
		t.Skip(why)
	}
	trunk := []any{map[string]any{"id": 101}, map[string]any{"minID": 200, "maxID": 202}}
	runFieldCases(t, []fieldCase{
		{"vlan drops the default VLAN", func(_ *fixture, conf map[string]any, _ *call) {
			conf["vlan"], conf["isGateway"] = 100, false // TestVlanGateway covers the gateway
		}, wantPortVlans(portVlans{100: "pvid untagged"})},
		{"vlan with preserveDefaultVlan", func(_ *fixture, conf map[string]any, _ *call) {
			conf["vlan"], conf["isGateway"], conf["preserveDefaultVlan"] = 100, false, true
		}, wantPortVlans(portVlans{1: "untagged", 100: "pvid untagged"})},
		{"vlanTrunk gets native VLAN 1", func(_ *fixture, conf map[string]any, _ *call) {
			conf["vlanTrunk"] = trunk
			delete(conf, "ipam")
		}, wantPortVlans(portVlans{1: "pvid untagged", 101: "tagged", 200: "tagged", 201: "tagged", 202: "tagged"})},
		{"vlan and vlanTrunk", func(_ *fixture, conf map[string]any, _ *call) {
			conf["vlan"], conf["vlanTrunk"] = 100, trunk[:1]
			delete(conf, "ipam")
		}, wantPortVlans(portVlans{100: "pvid untagged", 101: "tagged"})},
	})
}

// wantPortVlans checks the bridge filters VLANs and the host veth's table.
func wantPortVlans(want portVlans) func(*testing.T, *fixture, pod, *current.Result) {
	return func(t *testing.T, f *fixture, _ pod, res *current.Result) {
		t.Helper()
		if got := sysfs(t, f.node, f.bridge, "bridge/vlan_filtering"); got != "1" {
			t.Errorf("bridge %s vlan_filtering = %s, want 1", f.bridge, got)
		}
		wantVlans(t, f.node, res.Interfaces[1].Name, want)
	}
}

// TestVlanGateway: with vlan and isGateway the gateway address goes on
// "<bridge>.<vlan>", whose bridge-side peer is in the VLAN; pods in the VLAN
// reach each other and the gateway. The gateway interface stays after the
// pods are gone, as the bridge does.
func TestVlanGateway(t *testing.T) {
	t.Parallel()
	if why := vlanUnsupported(t); why != "" {
		t.Skip(why)
	}
	f := newFixture(t, podSubnet)
	conf := f.conf("1.1.0")
	conf["vlan"] = 100
	a, b := f.newPod(), f.newPod()
	resA := mustResult(t, f.run(f.callFor("ADD", a, conf)), "1.1.0")
	resB := mustResult(t, f.run(f.callFor("ADD", b, conf)), "1.1.0")
	gwName := f.bridge + ".100"
	if len(resA.Interfaces) != 4 || resA.Interfaces[3].Name != gwName {
		t.Fatalf("result interfaces %v, want the bridge, host veth, container and %s", resA.Interfaces, gwName)
	}
	gw := ipAddrs(t, f.node, "dev", gwName)[0]
	if !gw.hasAddr("10.244.0.1", 24) || ipAddrs(t, f.node, "dev", f.bridge)[0].hasAddr("10.244.0.1", 24) {
		t.Errorf("gateway 10.244.0.1/24 on %s: %+v; want it there and not on the bridge", gwName, gw.AddrInfo)
	}
	peer := vethPeer(t, f.node, gwName)
	if p := ipAddrs(t, f.node, "dev", peer)[0]; p.Master != f.bridge {
		t.Errorf("gateway peer %s master %q, want %s", peer, p.Master, f.bridge)
	}
	wantVlans(t, f.node, peer, portVlans{100: "pvid untagged"})
	wantVlans(t, f.node, resA.Interfaces[1].Name, portVlans{100: "pvid untagged"})
	ping(t, a.ns, resB.IPs[0].Address.IP.String())
	ping(t, b.ns, "10.244.0.1")
	for _, p := range []pod{a, b} {
		mustSucceed(t, f.run(f.callFor("DEL", p, conf)), "DEL "+p.id)
	}
	f.assertClean(gwName, peer)
}
