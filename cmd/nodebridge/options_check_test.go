package main_test

import (
	"encoding/json"
	"testing"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// checkMAC is the MAC TestCheckOptions asks for.
const checkMAC = "02:42:0a:f4:00:77"

// TestCheckOptions: CHECK passes on an attachment made with mtu, hairpinMode,
// portIsolation and a MAC, and fails, naming what differs, once the kernel
// no longer shows one of them or shows a promiscuous bridge the config does
// not ask for; it passes again once the change is undone.
func TestCheckOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		dev         string   // "host" veth, "bridge" or "container" interface
		spoil, mend []string // arguments of ip link set dev DEV
		want        string
	}{
		{"hairpin off", "host", brSlave("hairpin", "off"), brSlave("hairpin", "on"), "hairpin false, hairpinMode is true"},
		{"isolation off", "host", brSlave("isolated", "off"), brSlave("isolated", "on"), "isolated false, portIsolation is true"},
		{"bridge promiscuous", "bridge", []string{"promisc", "on"}, []string{"promisc", "off"}, "promiscuous mode true, promiscMode is false"},
		{"host MTU", "host", []string{"mtu", "1300"}, []string{"mtu", "1400"}, "MTU 1300, mtu is 1400"},
		{"container MTU", "container", []string{"mtu", "1300"}, []string{"mtu", "1400"}, "MTU 1300, mtu is 1400"},
		{"container MAC", "container", []string{"address", "02:42:0a:f4:00:78"}, []string{"address", checkMAC}, "the config asks for " + checkMAC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, podSubnet)
			p := f.newPod()
			conf := f.conf("1.1.0")
			conf["mtu"], conf["hairpinMode"], conf["portIsolation"] = 1400, true, true
			conf["runtimeConfig"] = map[string]any{"mac": checkMAC}
			o := f.run(f.callFor("ADD", p, conf))
			netns, dev := f.node, map[string]string{"host": mustResult(t, o, "1.1.0").Interfaces[1].Name, "bridge": f.bridge}[tt.dev]
			if tt.dev == "container" {
				netns, dev = p.ns, p.ifName
			}
			conf["prevResult"] = json.RawMessage(o.Stdout)
			mustSucceed(t, f.run(f.callFor("CHECK", p, conf)), "CHECK of an intact attachment")

			testenv.Run(t, netns, append([]string{"ip", "link", "set", "dev", dev}, tt.spoil...)...)
			f.checkFails(p, conf, tt.want, "after "+tt.name)
			testenv.Run(t, netns, append([]string{"ip", "link", "set", "dev", dev}, tt.mend...)...)
			mustSucceed(t, f.run(f.callFor("CHECK", p, conf)), "CHECK after undoing "+tt.name)

			delete(conf, "prevResult")
			mustSucceed(t, f.run(f.callFor("DEL", p, conf)), "DEL")
			f.assertClean()
		})
	}
}

// brSlave is the ip link set arguments that set a bridge port flag.
func brSlave(flag, value string) []string {
	return []string{"type", "bridge_slave", flag, value}
}
