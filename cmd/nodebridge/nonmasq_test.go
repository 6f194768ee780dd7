package main_test

import (
	"encoding/json"
	"maps"
	"net/netip"
	"strings"
	"testing"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// keptAddr is a second address of the outside host, in keptPrefix, which
// the node reaches through one route via the outside host's uplink address.
const (
	keptAddr   = "198.18.1.2"
	keptPrefix = "198.18.1.0/24"
)

// TestNonMasquerade, under each backend: a pod's traffic to a destination
// in nonMasqueradeCIDRs keeps its pod source while traffic elsewhere is
// masqueraded; once verified, the rules are trusted by the next ADD of the
// same config, but an ADD whose list changed rewrites them; and CHECK with
// the old list then reports the missing exclusion. The probes are one-way
// UDP, so the outside host needs no route back to the pods.
func TestNonMasquerade(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"iptables", "nftables"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, podSubnet)
			out := f.newOutside()
			testenv.Run(t, out, "ip", "addr", "add", keptAddr+"/32", "dev", "eth0")
			testenv.Run(t, f.node, "ip", "route", "add", keptPrefix, "via", outsideAddr)
			kept := f.conf("1.1.0")
			kept["ipMasqBackend"] = backend
			kept["nonMasqueradeCIDRs"] = []any{keptPrefix, "fd00:10:244::/56"}

			a := f.newPod()
			oA := f.addTraced(a, kept)
			podA := netip.MustParseAddr(mustResult(t, oA, "1.1.0").IPs[0].Address.IP.String())
			f.wantSources(a, out, podA, netip.MustParseAddr(nodeUplink))
			f.addTraced(f.newPod(), kept) // verifies the rules and records the stamp
			if o := f.addTraced(f.newPod(), kept); !strings.Contains(string(o.Stderr), "unchanged since verified") {
				t.Errorf("ADD with an unchanged config re-read the rules; stderr:\n%s", o.Stderr)
			}

			masq := f.conf("1.1.0")
			masq["ipMasqBackend"] = backend
			if o := f.addTraced(f.newPod(), masq); strings.Contains(string(o.Stderr), "unchanged since verified") {
				t.Errorf("ADD without nonMasqueradeCIDRs trusted the stamp of the rules with it; stderr:\n%s", o.Stderr)
			}
			f.wantSources(a, out, netip.MustParseAddr(nodeUplink), netip.MustParseAddr(nodeUplink))

			check := maps.Clone(kept)
			check["prevResult"] = json.RawMessage(oA.Stdout)
			f.checkFails(a, check, keptPrefix, "with nonMasqueradeCIDRs the rules no longer have")
			check = maps.Clone(masq)
			check["prevResult"] = json.RawMessage(oA.Stdout)
			mustSucceed(t, f.run(f.callFor("CHECK", a, check)), "CHECK with the config last ADDed")
		})
	}
}

// addTraced ADDs p with conf under NODEBRIDGE_TRACE, fails the test unless
// it succeeded, and returns the outcome, diagnostics included.
func (f *fixture) addTraced(p pod, conf map[string]any) outcome {
	f.t.Helper()
	c := f.callFor("ADD", p, conf)
	c.Env = []string{"NODEBRIDGE_TRACE=1"}
	o := f.run(c)
	mustResult(f.t, o, "1.1.0")
	return o
}

// wantSources checks the source addresses the outside host sees from pod p:
// toKept at keptAddr, toOther at outsideAddr.
func (f *fixture) wantSources(p pod, out string, toKept, toOther netip.Addr) {
	f.t.Helper()
	if src := sourceSeenOutsideAt(f.t, p.ns, out, keptAddr); src != toKept {
		f.t.Errorf("%s saw source %s, want %s", keptAddr, src, toKept)
	}
	if src := sourceSeenOutsideAt(f.t, p.ns, out, outsideAddr); src != toOther {
		f.t.Errorf("%s saw source %s, want %s", outsideAddr, src, toOther)
	}
}

// TestNonMasqueradeAll, under each backend, with dual-stack pods:
// 0.0.0.0/0 in nonMasqueradeCIDRs stops IPv4 masquerade and leaves IPv6's;
// with ::/0 as well, neither family is masqueraded. ADDs with the same
// config find the rules as written: the second verifies them without a
// write and records the stamp, which the third trusts.
func TestNonMasqueradeAll(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"iptables", "nftables"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, podSubnet)
			out := f.newOutside6()
			conf := f.conf("1.1.0")
			conf["ipMasqBackend"] = backend
			conf["isGateway"], conf["isDefaultGateway"] = false, true
			conf["ipam"] = f.dualStackIPAM()
			for _, step := range []struct {
				cidrs []any
				masq6 bool // IPv6 is still masqueraded
			}{
				{[]any{"0.0.0.0/0"}, true},
				{[]any{"0.0.0.0/0", "::/0"}, false},
			} {
				conf["nonMasqueradeCIDRs"] = step.cidrs
				p := f.newPod()
				res := mustResult(t, f.addTraced(p, conf), "1.1.0")
				f.addTraced(f.newPod(), conf) // records the stamp only if its Ensure wrote nothing
				if o := f.addTraced(f.newPod(), conf); !strings.Contains(string(o.Stderr), "unchanged since verified") {
					t.Errorf("%v: the second ADD rewrote the rules, the third did not trust them; stderr:\n%s", step.cidrs, o.Stderr)
				}
				pod4 := netip.MustParseAddr(res.IPs[0].Address.IP.String())
				if src := sourceSeenOutsideAt(t, p.ns, out, outsideAddr); src != pod4 {
					t.Errorf("%v: outside saw IPv4 source %s, want the pod's %s", step.cidrs, src, pod4)
				}
				want6 := netip.MustParseAddr(res.IPs[1].Address.IP.String())
				if step.masq6 {
					want6 = netip.MustParseAddr(nodeUplink6)
				}
				if src := sourceSeenOutsideAt(t, p.ns, out, outsideAddr6); src != want6 {
					t.Errorf("%v: outside saw IPv6 source %s, want %s", step.cidrs, src, want6)
				}
			}
		})
	}
}
