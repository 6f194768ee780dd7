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
			if c.Pool == nil || c.Pool.DataDir != "/run/nb-test-ipam" || len(c.Pool.Sets) != 0 {
				t.Errorf("release pool %+v, want the dataDir and no range sets", c.Pool)
			}
			if c.Rules == nil {
				t.Errorf("release config has no rules backend to delete the network's rules with")
			}
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
	if c.Pool == nil || c.Pool.DataDir != ipam.DefaultDataDir {
		t.Errorf("release pool %+v, want dataDir %s", c.Pool, ipam.DefaultDataDir)
	}
}
