package bridge

import (
	"errors"
	"strings"
	"testing"

	"github.com/nodebridge/nodebridge/pkg/ipam"
)

// TestParseForRelease: DEL and GC accept a config and environment whose
// ADD-only parts broke since the ADD, and still find the store; ADD,
// CHECK and (for the network's config) STATUS refuse them.
func TestParseForRelease(t *testing.T) {
	hostLocal := func(extra string) string {
		return `"ipMasq": true, "ipam": {"type": "host-local", "dataDir": "/run/nb-test-ipam", ` + extra + `}`
	}
	for _, tt := range []struct {
		name   string
		stdin  []byte
		args   string // CNI_ARGS
		status bool   // STATUS refuses it too
	}{
		{"resolvConf gone", conf(hostLocal(`"subnet": "10.1.0.0/16", "resolvConf": "/nonexistent/resolv.conf"`)), "", true},
		{"CNI_ARGS IP outside", conf(hostLocal(`"subnet": "10.1.0.0/16"`)), "IP=192.0.2.7", false},
		{"CNI_ARGS MAC garbage", conf(hostLocal(`"subnet": "10.1.0.0/16"`)), "MAC=zz:zz", false},
		{"CNI_ARGS pair without =", conf(hostLocal(`"subnet": "10.1.0.0/16"`)), "IgnoreUnknown", false},
		{"runtimeConfig.mac garbage", conf(hostLocal(`"subnet": "10.1.0.0/16"`), `"runtimeConfig": {"mac": "nope"}`), "", false},
		{"args.cni.ips not an IP", conf(hostLocal(`"subnet": "10.1.0.0/16"`), `"args": {"cni": {"ips": ["x"]}}`), "", false},
		{"subnet invalid", conf(hostLocal(`"subnet": "10.1.0.0/33"`)), "", true},
		{"no ranges", conf(hostLocal(`"routes": [{"dst": "nope"}]`)), "", true},
		{"ipMasqBackend unknown", conf(hostLocal(`"subnet": "10.1.0.0/16"`), `"ipMasqBackend": "pf"`), "", true},
		{"options broken", conf(hostLocal(`"subnet": "10.1.0.0/16"`), `"mtu": 1`, `"vlan": -1`, `"nonMasqueradeCIDRs": ["x"]`), "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := testPod
			p.Args = tt.args
			if _, err := Parse(tt.stdin, p); err == nil {
				t.Errorf("Parse (ADD) accepted it")
			}
			c, err := ParseFor(ModeRelease, tt.stdin, p)
			if err != nil {
				t.Fatalf("ParseFor(ModeRelease): %v", err)
			}
			if pool := poolOf(c); pool == nil || pool.DataDir != "/run/nb-test-ipam" || len(pool.Sets) != 0 {
				t.Errorf("release pool %+v, want the dataDir and no range sets", pool)
			}
			// cmd's TestNewHostRelease: DEL and GC still get a rules backend.
			_, err = ParseFor(ModeStatus, tt.stdin, Pod{})
			if got := err != nil; got != tt.status {
				t.Errorf("ParseFor(ModeStatus) error %v, want one: %t", err, tt.status)
			}
		})
	}
}

// TestParseForReleaseNames: what names the state is checked in every mode.
func TestParseForReleaseNames(t *testing.T) {
	for _, tt := range []struct {
		name  string
		stdin []byte
		pod   Pod
		kind  error
		msg   string
	}{
		{"not JSON", []byte(`{"name": `), testPod, ErrDecode, "config"},
		{"name", conf(`"name": "../x"`), testPod, ErrInvalid, `name "../x"`},
		{"bridge", conf(`"bridge": "a/b"`), testPod, ErrInvalid, `bridge "a/b"`},
		{"ipam.type", conf(`"ipam": {"type": "../bin/x"}`), testPod, ErrInvalid, `ipam.type "../bin/x"`},
		{"CNI_CONTAINERID", conf(), Pod{ContainerID: "../x", IfName: "eth0"}, ErrEnv, `CNI_CONTAINERID "../x"`},
		{"CNI_IFNAME", conf(), Pod{ContainerID: "abc", IfName: "eth/0"}, ErrEnv, `CNI_IFNAME "eth/0"`},
		{"valid attachment", conf(`"cni.dev/valid-attachments": [{"containerID": "a"}]`), Pod{}, ErrInvalid, "valid-attachments[0]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseFor(ModeRelease, tt.stdin, tt.pod)
			if !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("ParseFor(ModeRelease) = %v, want %v naming %s", err, tt.kind, tt.msg)
			}
		})
	}
}

// TestReleasePoolDefault: without ipam.dataDir the release pool is the default's.
func TestReleasePoolDefault(t *testing.T) {
	c, err := ParseFor(ModeRelease, conf(`"ipam": {"type": "host-local"}`), testPod)
	if err != nil {
		t.Fatal(err)
	}
	if pool := poolOf(c); pool == nil || pool.DataDir != ipam.DefaultDataDir {
		t.Errorf("release pool %+v, want dataDir %s", pool, ipam.DefaultDataDir)
	}
}

// TestParseForCheck: CHECK's prevResult must be there and hold nothing
// the conversion or CHECK would panic on; the message names the field.
func TestParseForCheck(t *testing.T) {
	ifaces := `"interfaces": [{"name": "cni0"}, {"name": "nbx"}, {"name": "eth0", "sandbox": "/x"}]`
	for _, tt := range []struct {
		name, prev, want string
	}{
		{"missing", ``, "prevResult: required for CHECK"},
		{"null interface", `"prevResult": {"interfaces": [null]}`, "prevResult.interfaces[0]: null"},
		{"null ip", `"prevResult": {` + ifaces + `, "ips": [{"address": "10.1.0.2/16"}, null]}`, "prevResult.ips[1]: null"},
		{"null route", `"prevResult": {"routes": [null]}`, "prevResult.routes[0]: null"},
		{"ip without address", `"prevResult": {"ips": [{"gateway": "10.1.0.1"}]}`, "prevResult.ips[0].address: missing"},
		{"route without dst", `"prevResult": {"routes": [{"gw": "10.1.0.1"}]}`, "prevResult.routes[0].dst: missing"},
		{"interface index past the end", `"prevResult": {` + ifaces + `, "ips": [{"address": "10.1.0.2/16", "interface": 3}]}`,
			"prevResult.ips[0].interface 3: no such entry in prevResult.interfaces (3 entries)"},
		{"interface index negative", `"prevResult": {"ips": [{"address": "10.1.0.2/16", "interface": -1}]}`,
			"prevResult.ips[0].interface -1"},
		{"interface index fraction", `"prevResult": {` + ifaces + `, "ips": [{"address": "10.1.0.2/16", "interface": 1.5}]}`,
			"prevResult.ips[0].interface 1.5"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fields := []string{dualStack}
			if tt.prev != "" {
				fields = append(fields, tt.prev)
			}
			stdin := conf(fields...)
			_, err := ParseFor(ModeCheck, stdin, testPod)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseFor(ModeCheck) = %v, want ErrInvalid naming %q", err, tt.want)
			}
			if tt.prev != "" {
				if _, err := Parse(stdin, testPod); err != nil {
					t.Errorf("Parse (ADD) refused what only CHECK reads: %v", err)
				}
			}
		})
	}
	good := `"prevResult": {` + ifaces + `, "ips": [{"address": "10.1.0.2/16", "interface": 2}], "routes": [{"dst": "0.0.0.0/0"}]}`
	if _, err := ParseFor(ModeCheck, conf(dualStack, good), testPod); err != nil {
		t.Errorf("ParseFor(ModeCheck) of a sound prevResult: %v", err)
	}
}

// TestResultJSONProblems: a delegated IPAM plugin's result is checked
// before conversion, which would panic on a null interface of a 0.4.0
// result.
func TestResultJSONProblems(t *testing.T) {
	for _, tt := range []struct {
		name, result string
		want         []string
	}{
		{"sound", `{"cniVersion": "0.4.0", "ips": [{"version": "4", "address": "10.1.0.2/16"}]}`, nil},
		{"nulls", `{"cniVersion": "0.4.0", "interfaces": [null], "ips": [null], "routes": [{"dst": "0.0.0.0/0"}, null]}`,
			[]string{"interfaces[0]: null", "ips[0]: null", "routes[1]: null"}},
		{"not an object", `[1]`, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, err := range resultJSONProblems("", []byte(tt.result)) {
				got = append(got, err.Error())
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("problems %q, want %q", got, tt.want)
			}
		})
	}
}

// TestParseRouteAttributes: the attributes of ipam.routes the kernel
// applies are kept for the result; a value out of the kernel's range is
// invalid (7), one it will not install unsupported (2), a value of the
// wrong JSON type a decode error (6); each names its JSON path.
func TestParseRouteAttributes(t *testing.T) {
	routes := func(rs string) []byte {
		return conf(`"ipam": {"type": "host-local", "ranges": [[{"subnet": "10.1.0.0/16"}], [{"subnet": "fd00:1::/64"}]], "routes": [` + rs + `]}`)
	}
	c := mustParse(t, routes(`{"dst": "0.0.0.0/0"}, {"dst": "10.9.0.0/16", "priority": 7, "table": 100, "scope": 200, "mtu": 1400, "advmss": 1360}`), testPod)
	if rt := poolOf(c).Routes[1]; rt.Priority != 7 || *rt.Table != 100 || *rt.Scope != 200 || rt.MTU != 1400 || rt.AdvMSS != 1360 {
		t.Errorf("route %+v, want priority 7, table 100, scope 200, mtu 1400, advmss 1360", rt)
	}
	for _, tt := range []struct {
		name   string
		routes string
		want   error
		frag   string
	}{
		{"negative table", `{"dst": "0.0.0.0/0"}, {"dst": "10.9.0.0/16", "table": -1}`, ipam.ErrInvalid, `ipam.routes[1].table "-1": not 0-4294967295`},
		{"table past 32 bits", `{"dst": "10.9.0.0/16", "table": 4294967296}`, ipam.ErrInvalid, `ipam.routes[0].table "4294967296"`},
		{"negative priority", `{"dst": "10.9.0.0/16", "priority": -5}`, ipam.ErrInvalid, `ipam.routes[0].priority "-5"`},
		{"scope past 8 bits", `{"dst": "10.9.0.0/16", "scope": 256}`, ipam.ErrInvalid, `ipam.routes[0].scope "256": not 0-255`},
		{"mtu too big", `{"dst": "10.9.0.0/16", "mtu": 65521}`, ipam.ErrInvalid, `ipam.routes[0].mtu "65521"`},
		{"negative advmss", `{"dst": "10.9.0.0/16", "advmss": -1}`, ipam.ErrInvalid, `ipam.routes[0].advmss "-1"`},
		{"scope on IPv6", `{"dst": "fd00:9::/64", "scope": 253}`, ipam.ErrUnsupported, `ipam.routes[0].scope "253": the kernel gives every IPv6 route scope 0`},
		{"scope nowhere", `{"dst": "10.9.0.0/16", "scope": 255}`, ipam.ErrUnsupported, `ipam.routes[0].scope "255"`},
		{"host scope via a gateway", `{"dst": "10.9.0.0/16", "scope": 254}`, ipam.ErrUnsupported, `ipam.routes[0].scope "254": the kernel adds no route of scope link or host via a gateway (the IPv4 gateway 10.1.0.1)`},
		{"fraction table", `{"dst": "10.9.0.0/16", "table": 1.5}`, ErrDecode, "field ipam.routes.table: cannot use number 1.5 as int"},
		{"priority past int64", `{"dst": "10.9.0.0/16", "priority": 1e30}`, ErrDecode, "field ipam.routes.priority"},
		{"string scope", `{"dst": "10.9.0.0/16", "scope": "link"}`, ErrDecode, `field ipam.routes.scope: cannot use string "link" as number`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(routes(tt.routes), testPod)
			wantOnly(t, err, tt.want, tt.frag)
		})
	}
}
