package main_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// TestCheck: CHECK passes on an intact attachment and, with a message naming
// the host veth, fails once that veth leaves the bridge or is deleted.
func TestCheck(t *testing.T) {
	t.Parallel()
	for _, specVersion := range []string{"0.4.0", "1.0.0", "1.1.0"} {
		t.Run(specVersion, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, podSubnet)
			p := f.newPod()
			o := f.run(f.callFor("ADD", p, f.conf(specVersion)))
			res := mustResult(t, o, specVersion)
			check := f.conf(specVersion)
			check["prevResult"] = json.RawMessage(o.Stdout)

			mustSucceed(t, f.run(f.callFor("CHECK", p, check)), "CHECK of an intact attachment")

			hostVeth := res.Interfaces[1].Name
			testenv.Run(t, f.node, "ip", "link", "set", "dev", hostVeth, "nomaster")
			f.checkFails(p, check, hostVeth, "after detaching "+hostVeth+" from the bridge")
			testenv.Run(t, f.node, "ip", "link", "set", "dev", hostVeth, "master", f.bridge)
			mustSucceed(t, f.run(f.callFor("CHECK", p, check)), "CHECK after reattaching "+hostVeth)

			testenv.Run(t, f.node, "ip", "link", "del", hostVeth)
			f.checkFails(p, check, hostVeth, "after deleting "+hostVeth)
			f.del(p)
			f.assertClean()
		})
	}
}

// TestCheckBefore040 covers the spec's floor: CHECK exists from 0.4.0 on,
// so an older config gets "incompatible version" (code 1).
func TestCheckBefore040(t *testing.T) {
	t.Parallel()
	f := newFixture(t, podSubnet)
	p := f.newPod()
	o := f.run(f.callFor("ADD", p, f.conf("0.3.1")))
	mustResult(t, o, "0.3.1")
	check := f.conf("0.3.1")
	check["prevResult"] = json.RawMessage(o.Stdout)
	if e := mustError(t, f.run(f.callFor("CHECK", p, check))); e.Code != 1 {
		t.Errorf("CHECK with cniVersion 0.3.1: code %d (%s), want 1", e.Code, e.Msg)
	}
	f.del(p)
}

// checkFails runs CHECK for p and fails the test unless it returns an error
// whose msg or details names want.
func (f *fixture) checkFails(p pod, check map[string]any, want, when string) {
	f.t.Helper()
	e := mustError(f.t, f.run(f.callFor("CHECK", p, check)))
	if text := e.Msg + " " + e.Details; !strings.Contains(text, want) {
		f.t.Errorf("CHECK %s: error %q does not name %s", when, text, want)
	}
}
