package bridge

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/nodebridge/nodebridge/internal/testenv"
	"github.com/nodebridge/nodebridge/pkg/rules"
)

func TestParseOptions(t *testing.T) {
	hostLocalV4 := `"ipam": {"type": "host-local", "subnet": "10.1.0.0/24"}`
	tests := []struct {
		name   string
		fields []string
		check  func(*Config) bool
	}{
		{"portIsolation", []string{`"portIsolation": true`}, func(c *Config) bool { return c.PortIsolation }},
		{"disableContainerInterface without ipam", []string{`"disableContainerInterface": true`},
			func(c *Config) bool { return c.DisableContainerInterface }},
		{"disableContainerInterface with an empty ipam", []string{`"disableContainerInterface": true`, `"ipam": {}`},
			func(c *Config) bool { return c.DisableContainerInterface && !c.layer3() }},
		{"vlan", []string{`"vlan": 100`, hostLocalV4}, func(c *Config) bool { return c.Vlan == 100 && c.vlanFiltering() }},
		{"vlanTrunk", []string{`"vlanTrunk": [{"id": 101}, {"minID": 200, "maxID": 299}]`},
			func(c *Config) bool { return len(trunkIDs(c.VlanTrunk)) == 101 }},
		{"preserveDefaultVlan", []string{`"vlan": 5`, `"preserveDefaultVlan": true`}, func(c *Config) bool { return c.PreserveDefaultVlan }},
		{"enabledad", []string{`"enabledad": true`}, func(c *Config) bool { return c.dad() }},
		{"enabledad is off with hairpinMode", []string{`"enabledad": true`, `"hairpinMode": true`}, func(c *Config) bool { return !c.dad() }},
		{"enabledad is off with promiscMode", []string{`"enabledad": true`, `"promiscMode": true`}, func(c *Config) bool { return !c.dad() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c := mustParse(t, conf(tt.fields...), testPod); !tt.check(c) {
				t.Errorf("Parse(%s) = %+v: check failed", conf(tt.fields...), c)
			}
		})
	}
}

func TestParseDisableContainerInterfaceWithIPAM(t *testing.T) {
	for _, ipamJSON := range []string{`"ipam": {"type": "host-local", "subnet": "10.1.0.0/24"}`, `"ipam": {"type": "dhcp"}`} {
		_, err := Parse(conf(`"disableContainerInterface": true`, ipamJSON), testPod)
		wantOnly(t, err, ErrInvalid, "disableContainerInterface true with ipam.type", "cannot take addresses")
	}
}

// newOptionNet is a testNet whose config has the given ipam ranges (a JSON
// array of range sets) and extra fields, no gateway and no masquerade.
func newOptionNet(t *testing.T, ranges, extra string) *testNet {
	t.Helper()
	tn := &testNet{node: testenv.NewNode(t), dataDir: t.TempDir(), rules: &rules.Fake{}}
	stdin := fmt.Sprintf(`{"cniVersion":"1.1.0","name":"unit","type":"nodebridge","bridge":"nbt0"%s,
		"ipam":{"type":"host-local","ranges":%s,"dataDir":%q}}`, extra, ranges, tn.dataDir)
	tn.c, tn.host = mustParse(t, []byte(stdin), Pod{}), &Host{}
	return tn
}

// TestAddDAD: with enabledad the pod's IPv6 address goes through duplicate
// address detection and is usable when Add returns; an address another host
// on the bridge already has fails the ADD, which undoes itself.
func TestAddDAD(t *testing.T) {
	t.Parallel()
	const v6 = `[[{"subnet": "fd00:1::/64"}]]`
	t.Run("settled", func(t *testing.T) {
		t.Parallel()
		tn := newOptionNet(t, v6, `,"enabledad":true`)
		p := tn.pod(t, "dad-ok")
		if err := tn.add(p); err != nil {
			t.Fatalf("Add: %v", err)
		}
		pod := filepath.Base(p.Netns)
		out := testenv.Run(t, pod, "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global")
		if !strings.Contains(out, "fd00:1::2/64") || strings.Contains(out, "tentative") || strings.Contains(out, "nodad") {
			t.Errorf("want fd00:1::2/64 through DAD and settled:\n%s", out)
		}
		if got := strings.TrimSpace(testenv.Run(t, pod, "cat", "/proc/sys/net/ipv6/conf/eth0/accept_dad")); got != "1" {
			t.Errorf("accept_dad = %s, want 1", got)
		}
	})
	t.Run("duplicate", func(t *testing.T) {
		t.Parallel()
		tn := newOptionNet(t, v6, `,"enabledad":true,"runtimeConfig":{"ips":["fd00:1::5/64"]}`)
		testenv.Run(t, tn.node, "ip", "link", "add", "nbt0", "type", "bridge")
		testenv.Run(t, tn.node, "ip", "addr", "add", "fd00:1::5/128", "dev", "nbt0", "nodad")
		testenv.Run(t, tn.node, "ip", "link", "set", "nbt0", "up")
		err := tn.add(tn.pod(t, "dad-dup"))
		if err == nil || !strings.Contains(err.Error(), "fd00:1::5/64") || !strings.Contains(err.Error(), "duplicate address detection failed") {
			t.Fatalf("Add error = %v, want duplicate address detection of fd00:1::5/64 failed", err)
		}
		tn.assertNothingLeft(t)
	})
}

// vlanProbe tells whether this kernel can make a VLAN-filtering bridge,
// trying once per test binary in a throwaway netns; "" means it can.
var vlanProbe struct {
	once sync.Once
	why  string
}

// vlanUnsupported returns why the kernel cannot filter VLANs, or "".
func vlanUnsupported(t *testing.T) string {
	t.Helper()
	vlanProbe.once.Do(func() {
		node := testenv.NewNS(t, "vlanprobe")
		out, err := exec.Command("ip", "-n", node, "link", "add", "nbprobe0", "type", "bridge", "vlan_filtering", "1").CombinedOutput()
		if err != nil {
			vlanProbe.why = fmt.Sprintf("kernel lacks bridge VLAN filtering: ip link add type bridge vlan_filtering 1: %v: %s", err, strings.TrimSpace(string(out)))
		}
	})
	return vlanProbe.why
}

// TestAddVlanWithoutKernelSupport: on a kernel without bridge VLAN
// filtering, ADD with vlan fails as unsupported, naming vlan and the kernel,
// and leaves nothing: no bridge it would have created, no veth, no address.
func TestAddVlanWithoutKernelSupport(t *testing.T) {
	t.Parallel()
	if why := vlanUnsupported(t); why == "" {
		t.Skip("kernel has bridge VLAN filtering; TestVlan* in cmd/nodebridge cover it")
	}
	const v4 = `[[{"subnet": "10.1.0.0/24"}]]`
	for _, existing := range []bool{false, true} {
		t.Run(fmt.Sprintf("bridge exists %t", existing), func(t *testing.T) {
			t.Parallel()
			tn := newOptionNet(t, v4, `,"vlan":100`)
			if existing {
				testenv.Run(t, tn.node, "ip", "link", "add", "nbt0", "type", "bridge")
			}
			err := tn.add(tn.pod(t, "vlan"))
			if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "vlan 100") || !strings.Contains(err.Error(), "kernel lacks bridge VLAN filtering") {
				t.Fatalf("Add error = %v, want ErrUnsupported naming vlan 100 and the kernel", err)
			}
			tn.assertNothingLeft(t)
			out := testenv.Run(t, tn.node, "ip", "-o", "link", "show")
			if strings.Contains(out, "nbt0") != existing {
				t.Errorf("bridge nbt0 present = %t, want %t:\n%s", !existing, existing, out)
			}
		})
	}
}

// TestSetIPsComputesGateway: as in the reference, when the bridge is the
// gateway and IPAM (another plugin) names none, the subnet's first address is
// the gateway, and so the default route's next hop.
func TestSetIPsComputesGateway(t *testing.T) {
	tests := []struct {
		name      string
		isGateway bool
		cidr      string
		want      string
	}{
		{"IPv4", true, "10.1.2.5/24", "10.1.2.1"},
		{"IPv6", true, "fd00:1::5/64", "fd00:1::1"},
		{"not the gateway", false, "10.1.2.5/24", "<nil>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Config{IsGateway: tt.isGateway, IsDefaultGateway: tt.isGateway}
			res := &current.Result{}
			if err := setIPs(c, res, &current.Result{IPs: []*current.IPConfig{ipConfig(t, tt.cidr, "")}}); err != nil {
				t.Fatalf("setIPs: %v", err)
			}
			if got := res.IPs[0].Gateway.String(); got != tt.want {
				t.Errorf("gateway %s, want %s", got, tt.want)
			}
			if tt.isGateway && (len(res.Routes) != 1 || res.Routes[0].GW.String() != tt.want) {
				t.Errorf("routes %v, want a default route via %s", res.Routes, tt.want)
			}
		})
	}
}
