package main

import (
	"fmt"
	"testing"

	"github.com/nodebridge/nodebridge/pkg/bridge"
)

var hostPod = bridge.Pod{ContainerID: "0123abcd", IfName: "eth0"}

// mustHost parses stdin for mode m and builds the host side as run does.
func mustHost(t *testing.T, m bridge.Mode, stdin string) *bridge.Host {
	t.Helper()
	c, err := bridge.ParseFor(m, []byte(stdin), hostPod)
	if err != nil {
		t.Fatalf("ParseFor(%s): %v", stdin, err)
	}
	h, err := newHost(c)
	if err != nil {
		t.Fatalf("newHost(%s): %v", stdin, err)
	}
	return h
}

// TestNewHostRules: the rules backend is the one ipMasqBackend names, the
// host's choice without one, and none without ipMasq, whatever
// ipMasqBackend says.
func TestNewHostRules(t *testing.T) {
	for _, tt := range []struct {
		name, conf, wantType string
	}{
		{"iptables", `"ipMasq": true, "ipMasqBackend": "iptables"`, "*rules.iptPrimary"},
		{"nftables", `"ipMasq": true, "ipMasqBackend": "nftables"`, "*rules.nftPrimary"},
		{"host's choice", `"ipMasq": true`, "any"},
		{"ipMasq and isGateway without ipam", `"ipMasq": true, "isGateway": true`, "any"},
		{"without ipMasq", `"ipMasq": false`, "<nil>"},
		{"ipMasqBackend ignored without ipMasq", `"ipMasqBackend": "nftables"`, "<nil>"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := mustHost(t, bridge.ModeAdd, `{"cniVersion": "1.1.0", "name": "n", `+tt.conf+`}`)
			got := fmt.Sprintf("%T", h.Rules)
			if tt.wantType == "any" && h.Rules == nil || tt.wantType != "any" && got != tt.wantType {
				t.Errorf("Rules is %s, want %s", got, tt.wantType)
			}
		})
	}
}

// TestNewHostRelease: DEL and GC get a backend to delete the network's
// rules with even when ipMasqBackend is no longer valid.
func TestNewHostRelease(t *testing.T) {
	h := mustHost(t, bridge.ModeRelease, `{"cniVersion": "1.1.0", "name": "n", "ipMasq": true, "ipMasqBackend": "pf",
		"ipam": {"type": "host-local", "subnet": "10.1.0.0/16", "dataDir": "/run/nb-test-ipam"}}`)
	if h.Rules == nil {
		t.Errorf("release has no rules backend to delete the network's rules with")
	}
}

// TestNewHostSpoofCheck: macspoofchk turns the spoof check on only when true.
func TestNewHostSpoofCheck(t *testing.T) {
	for _, on := range []bool{false, true} {
		h := mustHost(t, bridge.ModeAdd, fmt.Sprintf(`{"cniVersion": "1.1.0", "name": "n", "macspoofchk": %t}`, on))
		if (h.Spoof != nil) != on {
			t.Errorf("macspoofchk %t: spoof check %v", on, h.Spoof)
		}
	}
}

// TestNewHostLogs: with NODEBRIDGE_TRACE=1 the host has a log sink, and
// the reaper is this binary.
func TestNewHostLogs(t *testing.T) {
	t.Setenv("NODEBRIDGE_TRACE", "1")
	h := mustHost(t, bridge.ModeAdd, `{"cniVersion": "1.1.0", "name": "n", "ipMasq": true}`)
	if h.Logf == nil || h.Reaper != "/proc/self/exe" {
		t.Errorf("Host = %+v, want a log sink and /proc/self/exe as the reaper", h)
	}
}
