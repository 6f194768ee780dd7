package bridge

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodebridge/nodebridge/pkg/ipam"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// testPod is what a runtime passes on ADD.
var testPod = Pod{ContainerID: "0123abcd", Netns: "/var/run/netns/nb-test", IfName: "eth0"}

// dualStack is a host-local ipam section with one IPv4 and one IPv6 set.
const dualStack = `"ipam": {"type": "host-local", "ranges": [[{"subnet": "10.1.0.0/16"}], [{"subnet": "fd00:1::/64"}]]}`

// fourSets has a range set for each requested address of a test that asks
// for four: a set takes one requested address at most, as in host-local.
const fourSets = `"ipam": {"type": "host-local", "ranges": [[{"subnet": "10.1.0.0/16"}], [{"subnet": "fd00:1::/64"}], [{"subnet": "10.2.0.0/16"}], [{"subnet": "10.3.0.0/16"}]]}`

// conf returns a minimal valid network config with fields added; a field
// repeated here overrides the base one, as encoding/json keeps the last.
func conf(fields ...string) []byte {
	base := []string{`"cniVersion": "1.0.0"`, `"name": "podnet"`, `"type": "nodebridge"`}
	return []byte("{" + strings.Join(append(base, fields...), ", ") + "}")
}

func mustParse(t *testing.T, stdin []byte, p Pod) *Config {
	t.Helper()
	c, err := Parse(stdin, p)
	if err != nil {
		t.Fatalf("Parse(%s): %v", stdin, err)
	}
	return c
}

func TestParseFullConfig(t *testing.T) {
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 10.96.0.10\nsearch svc.cluster.local\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stdin := []byte(`{
		"cniVersion": "1.1.0", "name": "podnet", "type": "nodebridge",
		"bridge": "br-pods", "isGateway": false, "isDefaultGateway": true, "forceAddress": true,
		"ipMasq": true, "ipMasqBackend": "iptables", "mtu": 1450, "hairpinMode": true, "promiscMode": false,
		"vlan": 0, "vlanTrunk": [], "preserveDefaultVlan": false, "macspoofchk": false, "enabledad": true,
		"disableContainerInterface": false, "portIsolation": false,
		"ipam": {"type": "host-local", "dataDir": "/run/nb-test-ipam", "resolvConf": "` + resolv + `",
			"ranges": [[{"subnet": "10.22.0.0/16", "rangeStart": "10.22.1.10", "rangeEnd": "10.22.1.250", "gateway": "10.22.0.1"}],
				[{"subnet": "fd00:22::/64"}]],
			"routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]},
		"dns": {"nameservers": ["10.96.0.10"], "search": ["svc.cluster.local"]},
		"args": {"cni": {"ips": ["10.22.1.20"], "mac": "02:00:00:00:00:01"}},
		"runtimeConfig": {"ips": ["fd00:22::20/64"], "mac": "02:00:00:00:00:02"},
		"prevResult": {"cniVersion": "1.1.0", "ips": []},
		"cni.dev/valid-attachments": [{"containerID": "0123abcd", "ifname": "eth0"}]
	}`)
	c := mustParse(t, stdin, testPod)

	checks := []struct {
		field     string
		got, want any
	}{
		{"CNIVersion", c.CNIVersion, "1.1.0"},
		{"Type", c.Type, "nodebridge"},
		{"Bridge", c.Bridge, "br-pods"},
		{"IsGateway (implied by isDefaultGateway)", c.IsGateway, true},
		{"ForceAddress", c.ForceAddress, true},
		{"IPMasqBackend", c.IPMasqBackend, "iptables"},
		{"MTU", c.MTU, 1450},
		{"HairpinMode", c.HairpinMode, true},
		{"PreserveDefaultVlan", c.PreserveDefaultVlan, false},
		{"EnableDad", c.EnableDad, true},
		{"DNS.Nameservers", strings.Join(c.DNS.Nameservers, ","), "10.96.0.10"},
		{"MAC (runtimeConfig wins)", c.MAC.String(), "02:00:00:00:00:02"},
		{"Requested", addrs(c.Requested), "fd00:22::20,10.22.1.20"},
		{"Raw", string(c.Raw), string(stdin)},
		{"RawPrevResult", c.RawPrevResult["cniVersion"], "1.1.0"},
		{"ValidAttachments", len(c.ValidAttachments), 1},
		{"Pool.Sets", subnets(poolOf(c)), "10.22.0.0/16;fd00:22::/64"},
		{"Pool.DataDir", poolOf(c).DataDir, "/run/nb-test-ipam"},
		{"Pool.Routes", len(poolOf(c).Routes), 2},
		{"Pool.DNS from resolvConf", strings.Join(poolOf(c).DNS.Search, ","), "svc.cluster.local"},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %v, want %v", ck.field, ck.got, ck.want)
		}
	}
}

func TestParseDefaults(t *testing.T) {
	c := mustParse(t, []byte(`{"name": "podnet"}`), Pod{})
	checks := []struct {
		field     string
		got, want any
	}{
		{"CNIVersion (kept empty)", c.CNIVersion, ""},
		{"Bridge", c.Bridge, DefaultBridge},
		{"IsGateway", c.IsGateway, false},
		{"IPMasqBackend", c.IPMasqBackend, "" /* chosen per host at run time */},
		{"PreserveDefaultVlan (v1.9 default)", c.PreserveDefaultVlan, false},
		{"MTU", c.MTU, 0},
		{"Pool is nil (layer 2)", poolOf(c) == nil, true},
		{"no IPAM (layer 2)", c.addresser == addresser(noIPAM{}), true},
		{"MAC is nil", c.MAC == nil, true},
		{"Requested is nil", c.Requested == nil, true},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %v, want %v", ck.field, ck.got, ck.want)
		}
	}
}

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name  string
		stdin []byte
		pod   Pod
		check func(*Config) bool
	}{
		{"ipMasq and isGateway without ipam", conf(`"ipMasq": true`, `"isGateway": true`), testPod,
			func(c *Config) bool { return c.IPMasq && poolOf(c) == nil }},
		{"ipam without type is layer 2", conf(`"ipam": {"subnet": "10.1.0.0/16"}`), testPod,
			func(c *Config) bool { return c.addresser == addresser(noIPAM{}) }},
		{"ipMasqBackend ignored without ipMasq", conf(`"ipMasqBackend": "nftables"`), testPod,
			func(c *Config) bool { return !c.IPMasq }},
		{"empty vlanTrunk entry names no vlan", conf(`"vlanTrunk": [{}]`), testPod,
			func(c *Config) bool { return len(c.VlanTrunk) == 1 }},
		{"empty pod as STATUS and GC pass", conf(dualStack), Pod{},
			func(c *Config) bool { return poolOf(c) != nil }},
		{"longest interface names", conf(`"bridge": "br-0123456789ab"`), Pod{ContainerID: "a", IfName: "eth-0123456789a"},
			func(c *Config) bool { return c.Bridge == "br-0123456789ab" }},
		{"kubelet CNI_ARGS", conf(), Pod{ContainerID: "a", IfName: "eth0",
			Args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=a"},
			func(c *Config) bool { return c.MAC == nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c := mustParse(t, tt.stdin, tt.pod); !tt.check(c) {
				t.Errorf("Parse(%s) = %+v: check failed", tt.stdin, c)
			}
		})
	}
}

// sentinels are the errors cmd maps to CNI codes; a problem wraps exactly one.
var sentinels = []error{ErrDecode, ErrInvalid, ErrUnsupported, ErrEnv, ipam.ErrInvalid, ipam.ErrUnsupported}

// wantOnly fails t unless err wraps want and no other sentinel, and its
// message contains every fragment.
func wantOnly(t *testing.T, err, want error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", want)
	}
	for _, s := range sentinels {
		if got := errors.Is(err, s); got != (s == want) {
			t.Errorf("errors.Is(%q, %v) = %v, want %v", err, s, got, s == want)
		}
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not contain %q", err, f)
		}
	}
}

func TestParseDecodeErrors(t *testing.T) {
	huge := append(append([]byte(`{"name": "n", "pad": "`), bytes.Repeat([]byte("a"), MaxConfigSize)...), `"}`...)
	tests := []struct {
		name  string
		stdin []byte
		want  string
	}{
		{"nil", nil, "network config: empty"},
		{"blank", []byte(" \n\t"), "network config: empty"},
		{"oversized", huge, "more than 1048576"},
		{"truncated", []byte(`{"name": "n",`), "config: offset 13: unexpected end of JSON input"},
		{"trailing garbage", []byte(`{"name": "n"} x`), "config: offset 15"},
		{"string for number", []byte(`{"mtu": "abc"}`), `config: field mtu: cannot use string "abc" as number`},
		{"fraction for int", []byte(`{"mtu": 1.5}`), "field mtu: cannot use number 1.5 as int"},
		{"string for bool", []byte(`{"ipMasq": "yes"}`), `field ipMasq: cannot use string "yes" as bool`},
		{"bool for string", []byte(`{"bridge": true}`), "field bridge: cannot use bool true as string"},
		{"escaped quote", []byte(`{"vlan": "a\"b"}`), `field vlan: cannot use string "a\"b" as number`},
		{"object for array", []byte(`{"vlanTrunk": {}}`), "field vlanTrunk: cannot use object as array"},
		{"nested field", []byte(`{"ipam": {"ranges": [[{"subnet": 5}]]}}`), "field ipam.ranges.subnet: cannot use number 5 as string"},
		{"array for config", []byte(`[]`), "config: cannot use array as object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.stdin, testPod)
			wantOnly(t, err, ErrDecode, tt.want)
		})
	}
}

func TestParseInvalid(t *testing.T) {
	tests := []struct {
		name  string
		stdin []byte
		pod   Pod
		want  error
		frag  string
	}{
		{"no name", []byte(`{"type": "nodebridge"}`), testPod, ErrInvalid, `name "": required`},
		{"name with space", conf(`"name": "pod net"`), testPod, ErrInvalid, `name "pod net": must match`},
		{"name starting with dot", conf(`"name": ".podnet"`), testPod, ErrInvalid, `name ".podnet"`},
		{"name too long", conf(`"name": "` + strings.Repeat("n", 201) + `"`), testPod, ErrInvalid, `: longer than 200 bytes`},
		{"long bridge", conf(`"bridge": "averyveryverylongbridge"`), testPod, ErrInvalid, `bridge "averyveryverylongbridge": longer than 15 bytes`},
		{"bridge with slash", conf(`"bridge": "br/0"`), testPod, ErrInvalid, `bridge "br/0": contains`},
		{"bridge with colon", conf(`"bridge": "br:0"`), testPod, ErrInvalid, `bridge "br:0"`},
		{"bridge with space", conf(`"bridge": "br 0"`), testPod, ErrInvalid, `bridge "br 0"`},
		{"bridge dot-dot", conf(`"bridge": ".."`), testPod, ErrInvalid, `bridge ".."`},
		{"negative mtu", conf(`"mtu": -5`), testPod, ErrInvalid, "mtu -5: must be between 68 and 65535"},
		{"mtu below IPv4 minimum", conf(`"mtu": 67`), testPod, ErrInvalid, "mtu 67"},
		{"mtu too big", conf(`"mtu": 65536`), testPod, ErrInvalid, "mtu 65536"},
		{"hairpin with promisc", conf(`"hairpinMode": true`, `"promiscMode": true`), testPod, ErrInvalid, "hairpinMode and promiscMode: conflicting"},
		{"vlan too big", conf(`"vlan": 4095`), testPod, ErrInvalid, "vlan 4095: must be between 0 and 4094"},
		{"negative vlan", conf(`"vlan": -1`), testPod, ErrInvalid, "vlan -1"},
		{"trunk min over max", conf(`"vlanTrunk": [{"minID": 10, "maxID": 5}]`), testPod, ErrInvalid, "vlanTrunk[0]: minID 10 greater than maxID 5"},
		{"trunk min without max", conf(`"vlanTrunk": [{"id": 5}, {"minID": 1}]`), testPod, ErrInvalid, "vlanTrunk[1]: minID and maxID must be set together"},
		{"trunk id zero", conf(`"vlanTrunk": [{"id": 0}]`), testPod, ErrInvalid, "vlanTrunk[0].id 0: must be between 1 and 4094"},
		{"trunk max too big", conf(`"vlanTrunk": [{"minID": 1, "maxID": 4095}]`), testPod, ErrInvalid, "vlanTrunk[0].maxID 4095"},
		{"unknown masq backend", conf(`"ipMasq": true`, `"ipMasqBackend": "ipvs"`), testPod, ErrInvalid, `ipMasqBackend "ipvs": must be`},
		{"ipam type with slash", conf(`"ipam": {"type": "../bin/sh"}`), testPod, ErrInvalid, `ipam.type "../bin/sh": must be a plain file name`},
		{"ipam type dot-dot", conf(`"ipam": {"type": ".."}`), testPod, ErrInvalid, `ipam.type ".."`},
		{"attachment without ifname", conf(`"cni.dev/valid-attachments": [{"containerID": "a", "ifname": "eth0"}, {"containerID": "b"}]`),
			Pod{}, ErrInvalid, "cni.dev/valid-attachments[1]"},
		{"runtime mac not a mac", conf(`"runtimeConfig": {"mac": "zz"}`), testPod, ErrInvalid, `runtimeConfig.mac "zz": not a MAC address`},
		{"args mac multicast", conf(`"args": {"cni": {"mac": "01:00:5e:00:00:01"}}`), testPod, ErrInvalid, `args.cni.mac "01:00:5e:00:00:01": multicast`},
		{"runtime mac broadcast", conf(`"runtimeConfig": {"mac": "ff:ff:ff:ff:ff:ff"}`), testPod, ErrInvalid, "runtimeConfig.mac"},
		{"runtime mac zero", conf(`"runtimeConfig": {"mac": "00:00:00:00:00:00"}`), testPod, ErrInvalid, "all zeros"},
		{"runtime mac eui64", conf(`"runtimeConfig": {"mac": "02:00:00:00:00:00:00:01"}`), testPod, ErrInvalid, "not a 6-byte"},
		{"runtime ip not an ip", conf(dualStack, `"runtimeConfig": {"ips": ["10.1.0.5", "x"]}`), testPod, ErrInvalid, `runtimeConfig.ips[1] "x": not an IP`},
		{"args ip not an ip", conf(dualStack, `"args": {"cni": {"ips": ["10.1.0.300"]}}`), testPod, ErrInvalid, `args.cni.ips[0] "10.1.0.300"`},
		{"ipam bad subnet", conf(`"ipam": {"type": "host-local", "subnet": "10.0.0.0/33"}`), testPod, ipam.ErrInvalid, "ipam.subnet"},
		{"ipam without ranges", conf(`"ipam": {"type": "host-local"}`), testPod, ipam.ErrInvalid, "ipam.ranges"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.stdin, tt.pod)
			wantOnly(t, err, tt.want, tt.frag)
		})
	}
}

// The plugin refuses these network and bridge names, naming the JSON
// field; pkg/agent's TestValidateNamesAsThePlugin shows the agent refuses
// the same, so it never writes a conflist the plugin refuses.
func TestParseNamesAsTheAgent(t *testing.T) {
	for _, tc := range testenv.RefusedNames() {
		value, field := tc.Network, "name"
		if tc.Bridge != "" {
			value, field = tc.Bridge, "bridge"
		}
		want := fmt.Sprintf("%s %q: %s", field, value, tc.Reason)
		t.Run(want, func(t *testing.T) {
			c := &Config{Name: cmp.Or(tc.Network, "podnet"), Bridge: cmp.Or(tc.Bridge, DefaultBridge)}
			if err := c.Validate(); err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) {
				t.Errorf("got %v, want an ErrInvalid containing %q", err, want)
			}
		})
	}
}

// TestParseMacSpoofChk: macspoofchk is supported, so it parses. (cmd's
// TestNewHostSpoofCheck: it turns the spoof check on only when true.)
func TestParseMacSpoofChk(t *testing.T) {
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprint(on), func(t *testing.T) {
			c, err := Parse(conf(fmt.Sprintf(`"macspoofchk": %t`, on)), testPod)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if c.MacSpoofChk != on {
				t.Errorf("macspoofchk %t: MacSpoofChk %t", on, c.MacSpoofChk)
			}
		})
	}
}

func TestParseEnvErrors(t *testing.T) {
	tests := []struct {
		name string
		pod  Pod
		frag string
	}{
		{"ifname with slash", Pod{ContainerID: "a", IfName: "eth0/1"}, `CNI_IFNAME "eth0/1": not a valid interface name: contains`},
		{"ifname too long", Pod{ContainerID: "a", IfName: "eth0123456789abc"}, `CNI_IFNAME "eth0123456789abc": not a valid interface name: longer than 15 bytes`},
		{"ifname dot", Pod{ContainerID: "a", IfName: "."}, `CNI_IFNAME "."`},
		{"container id with dash first", Pod{ContainerID: "-abc", IfName: "eth0"}, `CNI_CONTAINERID "-abc": not a valid containerID: must match`},
		{"container id with slash", Pod{ContainerID: "a/../b", IfName: "eth0"}, `CNI_CONTAINERID "a/../b"`},
		{"args pair without =", Pod{Args: "IgnoreUnknown=1;K8S_POD_NAME"}, `CNI_ARGS "IgnoreUnknown=1;K8S_POD_NAME": pair "K8S_POD_NAME" has no '='`},
		{"args trailing ;", Pod{Args: "IgnoreUnknown=1;"}, `pair "" has no '='`},
		{"args bad IP", Pod{Args: "IP=10.1.0.5,nope"}, `CNI_ARGS IP "nope": not an IP`},
		{"args bad MAC", Pod{Args: "MAC=02:00"}, `CNI_ARGS MAC "02:00": not a MAC address`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(conf(dualStack), tt.pod)
			wantOnly(t, err, ErrEnv, tt.frag)
		})
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	stdin := conf(`"name": "pod net"`, `"bridge": "averyveryverylongbridge"`, `"mtu": -5`, `"vlan": 4095`,
		`"ipMasq": true`, `"ipMasqBackend": "ipvs"`, `"runtimeConfig": {"mac": "zz", "ips": ["x"]}`,
		`"ipam": {"type": "host-local", "ranges": [[{"subnet": "10.1.0.0/33"}]]}`)
	_, err := Parse(stdin, Pod{ContainerID: "-a", IfName: "eth/0", Args: "IP=nope;junk"})
	if err == nil {
		t.Fatal("no error")
	}
	for _, f := range []string{`name "pod net"`, `bridge "averyveryverylongbridge"`, "mtu -5", "vlan 4095",
		`ipMasqBackend "ipvs"`, `runtimeConfig.mac "zz"`, `runtimeConfig.ips[0] "x"`, `ipam.ranges[0][0].subnet "10.1.0.0/33"`,
		`CNI_CONTAINERID "-a"`, `CNI_IFNAME "eth/0"`, `CNI_ARGS IP "nope"`, `pair "junk"`} {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error does not report %q:\n%v", f, err)
		}
	}
	for _, s := range []error{ErrInvalid, ErrEnv, ipam.ErrInvalid} {
		if !errors.Is(err, s) {
			t.Errorf("errors.Is(err, %v) = false, want true", s)
		}
	}
	if errors.Is(err, ErrDecode) {
		t.Error("errors.Is(err, ErrDecode) = true for a config that decodes")
	}
}

func TestParseMACPrecedence(t *testing.T) {
	const envMAC, argsMAC, rtMAC = "02:00:00:00:00:0e", "02:00:00:00:00:0a", "02:00:00:00:00:0f"
	tests := []struct {
		name           string
		env, args, rt  string
		want           string
		wantNoMACField bool
	}{
		{name: "none", wantNoMACField: true},
		{name: "CNI_ARGS alone", env: envMAC, want: envMAC},
		{name: "args.cni beats CNI_ARGS", env: envMAC, args: argsMAC, want: argsMAC},
		{name: "runtimeConfig beats CNI_ARGS", env: envMAC, rt: rtMAC, want: rtMAC},
		{name: "runtimeConfig beats all", env: envMAC, args: argsMAC, rt: rtMAC, want: rtMAC},
		{name: "a bad overridden value is not looked at", env: "junk", args: "junk", rt: rtMAC, want: rtMAC},
		{name: "upper case accepted", rt: "02:AB:CD:00:00:01", want: "02:ab:cd:00:00:01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdin := conf(`"args": {"cni": {"mac": "`+tt.args+`"}}`, `"runtimeConfig": {"mac": "`+tt.rt+`"}`)
			p := testPod
			if tt.env != "" {
				p.Args = "IgnoreUnknown=1;MAC=" + tt.env
			}
			c := mustParse(t, stdin, p)
			if tt.wantNoMACField {
				if c.MAC != nil {
					t.Errorf("MAC = %v, want nil", c.MAC)
				}
				return
			}
			if want, _ := net.ParseMAC(tt.want); !bytes.Equal(c.MAC, want) {
				t.Errorf("MAC = %v, want %v", c.MAC, want)
			}
		})
	}
}

func TestParseRequestedIPs(t *testing.T) {
	tests := []struct {
		name  string
		stdin []byte
		args  string
		want  string
	}{
		{"none", conf(dualStack), "", ""},
		{"all sources in order, deduplicated",
			conf(fourSets, `"runtimeConfig": {"ips": ["10.1.0.5", "fd00:1::5/64"]}`, `"args": {"cni": {"ips": ["10.2.0.6/16", "10.1.0.5"]}}`),
			"IgnoreUnknown=1;IP=10.3.0.7,fd00:1::5;K8S_POD_NAME=web-0", "10.1.0.5,fd00:1::5,10.2.0.6,10.3.0.7"},
		{"CNI_ARGS last IP key wins", conf(dualStack), "IP=10.1.0.8;IP=10.1.0.9", "10.1.0.9"},
		{"CNI_ARGS empty IP asks for nothing", conf(dualStack), "IP=", ""},
		{"delegated ipam leaves them to the plugin",
			conf(`"ipam": {"type": "dhcp"}`, `"runtimeConfig": {"ips": ["not-looked-at"]}`), "IP=10.1.0.7", ""},
		{"layer 2 ignores them", conf(`"runtimeConfig": {"ips": ["10.1.0.5"]}`), "IP=10.1.0.7", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPod
			p.Args = tt.args
			if got := addrs(mustParse(t, tt.stdin, p).Requested); got != tt.want {
				t.Errorf("Requested = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseEnvArgs(t *testing.T) {
	tests := []struct {
		in      string
		wantIPs string
		wantMAC string
		wantErr bool
	}{
		{in: ""},
		{in: "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0"},
		{in: "IP=10.0.0.5", wantIPs: "10.0.0.5"},
		{in: "IP=10.0.0.5,,fd00::5;MAC=02:00:00:00:00:01", wantIPs: "10.0.0.5,fd00::5", wantMAC: "02:00:00:00:00:01"},
		{in: "ip=10.0.0.5;mac=x"}, // keys are case-sensitive, as in the reference
		{in: "K8S_POD_UID=a=b", wantIPs: ""},
		{in: "IgnoreUnknown", wantErr: true},
		{in: "IP=10.0.0.5;;MAC=x", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			e, err := parseEnvArgs(tt.in)
			if tt.wantErr {
				wantOnly(t, err, ErrEnv, "CNI_ARGS")
				return
			}
			if err != nil {
				t.Fatalf("parseEnvArgs(%q): %v", tt.in, err)
			}
			if got := strings.Join(e.IPs, ","); got != tt.wantIPs || e.MAC != tt.wantMAC {
				t.Errorf("parseEnvArgs(%q) = IPs %q MAC %q, want %q %q", tt.in, got, e.MAC, tt.wantIPs, tt.wantMAC)
			}
		})
	}
}

func TestParseRuntimeIPRanges(t *testing.T) {
	tests := []struct {
		name    string
		ipam    string
		rt      string
		want    string // subnets of the pool's sets
		wantErr string // fragment; the error wraps ipam.ErrInvalid
	}{
		{name: "without ipRanges the config's sets",
			ipam: `"ranges": [[{"subnet": "10.2.0.0/24"}]], "subnet": "10.1.0.0/24"`,
			want: "10.1.0.0/24;10.2.0.0/24"},
		{name: "ipRanges go first, then the legacy range, then ranges",
			ipam: `"subnet": "10.1.0.0/24", "ranges": [[{"subnet": "10.2.0.0/24"}]]`,
			rt:   `[[{"subnet": "10.9.0.0/24"}], [{"subnet": "fd00:9::/64"}]]`,
			want: "10.9.0.0/24;fd00:9::/64;10.1.0.0/24;10.2.0.0/24"},
		{name: "ipRanges alone", rt: `[[{"subnet": "10.9.0.0/24"}, {"subnet": "10.9.1.0/24"}]]`,
			want: "10.9.0.0/24,10.9.1.0/24"},
		{name: "bad ipRange named", rt: `[[{"subnet": "10.9.0.0/40"}]]`,
			ipam: `"ranges": [[{"subnet": "10.2.0.0/24"}]]`, wantErr: "runtimeConfig.ipRanges"},
		{name: "bad static range keeps its own path", rt: `[[{"subnet": "10.9.0.0/24"}]]`,
			ipam: `"ranges": [[{"subnet": "10.2.0.0/24", "gateway": "10.3.0.1"}]]`, wantErr: `ipam.ranges[0][0].gateway "10.3.0.1"`},
		{name: "ipRange overlapping a static range", rt: `[[{"subnet": "10.2.0.0/16"}]]`,
			ipam: `"ranges": [[{"subnet": "10.2.0.0/24"}]]`, wantErr: "runtimeConfig.ipRanges prepended"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fields := []string{`"ipam": {"type": "host-local"` + prefixComma(tt.ipam) + `}`}
			if tt.rt != "" {
				fields = append(fields, `"runtimeConfig": {"ipRanges": `+tt.rt+`}`)
			}
			c, err := Parse(conf(fields...), testPod)
			if tt.wantErr != "" {
				wantOnly(t, err, ipam.ErrInvalid, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := subnets(poolOf(c)); got != tt.want {
				t.Errorf("pool sets = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseDelegatedIPAM(t *testing.T) {
	stdin := conf(`"ipam": {"type": "dhcp", "daemonSocketPath": "/run/cni/dhcp.sock"}`, `"isGateway": true`)
	c := mustParse(t, stdin, testPod)
	if c.addresser != addresser(delegated{}) || c.IPAM.Type != "dhcp" || !bytes.Equal(c.Raw, stdin) {
		t.Errorf("Parse = addresser %T, ipam.type %q, Raw %s; want delegated, dhcp, stdin as given", c.addresser, c.IPAM.Type, c.Raw)
	}
}

// TestExampleConflists keeps the operator examples in testdata/ parseable:
// each nodebridge plugin gets the list's name and cniVersion, as libcni does.
func TestExampleConflists(t *testing.T) {
	files, err := filepath.Glob("../../testdata/*.conflist")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example conflists in testdata/ (%v)", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			for _, stdin := range nodebridgePlugins(t, f) {
				c := mustParse(t, stdin, testPod)
				if c.IPAM != nil && c.IPAM.Type == "host-local" && poolOf(c) == nil {
					t.Errorf("host-local example has no pool")
				}
			}
		})
	}
}

// nodebridgePlugins returns each nodebridge entry of a conflist as the
// runtime would pass it on stdin.
func nodebridgePlugins(t *testing.T, file string) [][]byte {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		CNIVersion string           `json:"cniVersion"`
		Name       string           `json:"name"`
		Plugins    []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var out [][]byte
	for _, p := range list.Plugins {
		if p["type"] != "nodebridge" {
			continue
		}
		p["name"], p["cniVersion"] = list.Name, list.CNIVersion
		stdin, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, stdin)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no plugin of type nodebridge", file)
	}
	return out
}

func prefixComma(s string) string {
	if s == "" {
		return ""
	}
	return ", " + s
}

// addrs formats addresses as "a,b" for comparison.
func addrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

// poolOf is the host-local pool Parse chose, or nil for another addresser.
func poolOf(c *Config) *ipam.Pool {
	if hl, ok := c.addresser.(*hostLocal); ok {
		return hl.pool
	}
	return nil
}

// subnets formats a pool's sets as "a,b;c" for comparison.
func subnets(p *ipam.Pool) string {
	if p == nil {
		return "<nil pool>"
	}
	var sets []string
	for _, set := range p.Sets {
		var rs []string
		for _, r := range set {
			rs = append(rs, r.Subnet.String())
		}
		sets = append(sets, strings.Join(rs, ","))
	}
	return strings.Join(sets, ";")
}

// TestParseRefusesUnservableRequests: a requested address Allocate would
// refuse is refused by Parse, before the store directory exists.
func TestParseRefusesUnservableRequests(t *testing.T) {
	for name, ips := range map[string]string{
		"outside every range": `["10.9.0.5"]`,
		"the gateway":         `["10.1.0.1"]`,
		"two for one set":     `["10.1.0.5", "10.1.0.6"]`,
	} {
		_, err := Parse([]byte(conf(dualStack, `"runtimeConfig": {"ips": `+ips+`}`)), testPod)
		if !errors.Is(err, ipam.ErrInvalid) || !strings.Contains(err.Error(), "requested address") {
			t.Errorf("%s: Parse error = %v, want ipam.ErrInvalid naming the requested address", name, err)
		}
	}
}
