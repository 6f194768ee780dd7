package main_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// The outside network's IPv6 side, beside newOutside's IPv4 one.
const (
	nodeUplink6  = "fd00:198::1"
	outsideAddr6 = "fd00:198::2"
)

// newOutside6 is newOutside with IPv6 addresses too; the outside host has no
// route to the pod subnets either.
func (f *fixture) newOutside6() string {
	f.t.Helper()
	out := f.newOutside()
	testenv.Run(f.t, f.node, "ip", "addr", "add", nodeUplink6+"/64", "dev", uplink, "nodad")
	testenv.Run(f.t, out, "ip", "addr", "add", outsideAddr6+"/64", "dev", "eth0", "nodad")
	return out
}

// TestDualStack: with an IPv4 and an IPv6 range and isDefaultGateway, the
// bridge carries both gateways, the node forwards both families, each pod has
// a default route per family, pods reach each other over both, and traffic
// to the outside is masqueraded in both.
func TestDualStack(t *testing.T) {
	t.Parallel()
	f := newFixture(t, podSubnet)
	out := f.newOutside6()
	conf := f.conf("1.1.0")
	conf["isGateway"], conf["isDefaultGateway"] = false, true
	conf["ipam"] = f.dualStackIPAM()
	a, b := f.newPod(), f.newPod()
	mustResult(t, f.run(f.callFor("ADD", a, conf)), "1.1.0")
	resB := mustResult(t, f.run(f.callFor("ADD", b, conf)), "1.1.0")

	br := ipAddrs(t, f.node, "dev", f.bridge)[0]
	if !br.hasAddr("10.244.0.1", 24) || !br.hasAddr("fd00:244::1", 64) {
		t.Errorf("bridge addresses %+v, want 10.244.0.1/24 and fd00:244::1/64", br.AddrInfo)
	}
	for _, path := range []string{"ipv4/ip_forward", "ipv6/conf/all/forwarding"} {
		if got := procSys(t, f.node, path); got != "1" {
			t.Errorf("node %s = %s, want 1", path, got)
		}
	}
	if got := procSys(t, f.node, "ipv6/conf/"+f.bridge+"/accept_ra"); got != "0" {
		t.Errorf("bridge accept_ra = %s, want 0: its routes are the plugin's", got)
	}
	// Changed by hand: the next ADD, which reads them over netlink, puts
	// them back.
	testenv.Run(t, f.node, "sysctl", "-q", "-w", "net.ipv6.conf."+f.bridge+".accept_ra=2",
		"net.ipv4.ip_forward=0", "net.ipv6.conf.all.forwarding=0")
	c := f.newPod()
	mustResult(t, f.run(f.callFor("ADD", c, conf)), "1.1.0")
	if got := procSys(t, f.node, "ipv6/conf/"+f.bridge+"/accept_ra"); got != "0" {
		t.Errorf("bridge accept_ra = %s after an ADD on a bridge set to 2, want 0", got)
	}
	for _, path := range []string{"ipv4/ip_forward", "ipv6/conf/all/forwarding"} {
		if got := procSys(t, f.node, path); got != "1" {
			t.Errorf("node %s = %s after an ADD with it off, want 1", path, got)
		}
	}
	if gw, _ := route(t, a.ns, "default"); gw != "10.244.0.1" {
		t.Errorf("pod IPv4 default route via %q, want 10.244.0.1", gw)
	}
	if gw, _ := route6(t, a.ns, "default"); gw != "fd00:244::1" {
		t.Errorf("pod IPv6 default route via %q, want fd00:244::1", gw)
	}

	t.Run("pod to pod over IPv6", func(t *testing.T) {
		addrA := globalAddrs6(t, a.ns, a.ifName)[0].Local
		ping(t, a.ns, resB.IPs[1].Address.IP.String())
		ping(t, b.ns, addrA)
		ping(t, a.ns, "fd00:244::1")
	})
	t.Run("pod to outside is masqueraded in both families", func(t *testing.T) {
		if src := sourceSeenOutside(t, a.ns, out); src != netip.MustParseAddr(nodeUplink) {
			t.Errorf("outside saw IPv4 source %s, want the node's uplink %s", src, nodeUplink)
		}
		if src := sourceSeenOutsideAt(t, b.ns, out, outsideAddr6); src != netip.MustParseAddr(nodeUplink6) {
			t.Errorf("outside saw IPv6 source %s, want the node's uplink %s", src, nodeUplink6)
		}
	})
	for _, p := range []pod{a, b, c} {
		mustSucceed(t, f.run(f.callFor("DEL", p, conf)), "DEL "+p.id)
	}
	f.assertClean(uplink)
}

// TestForceAddressIPv6: as in the reference, an IPv6 address on the bridge
// conflicts with the gateway only when their subnets overlap; forceAddress
// replaces the overlapping one and leaves the others.
func TestForceAddressIPv6(t *testing.T) {
	t.Parallel()
	f := newFixture(t, podSubnet)
	testenv.Run(t, f.node, "ip", "link", "add", f.bridge, "type", "bridge")
	testenv.Run(t, f.node, "ip", "addr", "add", "fd00:244::99/64", "dev", f.bridge, "nodad")
	testenv.Run(t, f.node, "ip", "addr", "add", "fd00:99::1/64", "dev", f.bridge, "nodad")
	p := f.newPod()
	conf := f.conf("1.1.0")
	conf["ipam"] = map[string]any{"type": "host-local", "subnet": podSubnet6, "dataDir": f.dataDir}

	e := mustError(t, f.run(f.callFor("ADD", p, conf)))
	if e.Code != 7 || !strings.Contains(e.Msg, "fd00:244::99/64") || !strings.Contains(e.Msg, "forceAddress") {
		t.Errorf("ADD onto a bridge with an overlapping IPv6 address: code %d %q, want 7 naming it and forceAddress", e.Code, e.Msg)
	}
	f.assertClean()

	conf["forceAddress"] = true
	mustResult(t, f.run(f.callFor("ADD", p, conf)), "1.1.0")
	br := ipAddrs(t, f.node, "dev", f.bridge)[0]
	if !br.hasAddr("fd00:244::1", 64) || br.hasAddr("fd00:244::99", 64) || !br.hasAddr("fd00:99::1", 64) {
		t.Errorf("forceAddress: bridge addresses %+v, want fd00:244::1/64 for fd00:244::99/64, fd00:99::1/64 kept", br.AddrInfo)
	}
	mustSucceed(t, f.run(f.callFor("DEL", p, conf)), "DEL")
	f.assertClean()
}
