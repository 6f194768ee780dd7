package main_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestDelegatedIPAM runs an IPAM type other than host-local from CNI_PATH, as
// the reference bridge does: the reference host-local binary, installed
// under another name so nodebridge cannot serve it in process.
func TestDelegatedIPAM(t *testing.T) {
	t.Parallel()
	ref := findTool(t, "host-local")
	link := filepath.Join(filepath.Dir(pluginBin), "ref-host-local")
	if err := os.Symlink(ref, link); err != nil && !errors.Is(err, os.ErrExist) {
		t.Fatal(err)
	}
	f := newFixture(t, podSubnet)
	conf := f.conf("1.1.0")
	conf["ipam"].(map[string]any)["type"] = "ref-host-local"
	p := f.newPod()
	res := mustResult(t, f.run(f.callFor("ADD", p, conf)), "1.1.0")
	if len(res.IPs) != 1 || !res.IPs[0].Address.IP.Equal([]byte{10, 244, 0, 2}) {
		t.Fatalf("delegated ADD gave IPs %v, want 10.244.0.2", res.IPs)
	}
	if got := f.allocations(); len(got) != 1 || got[0] != "10.244.0.2" {
		t.Errorf("the reference host-local recorded %v, want [10.244.0.2]", got)
	}
	if len(f.nbRules()) == 0 {
		t.Error("ipMasq with a delegated IPAM installed no rules")
	}
	ping(t, p.ns, "10.244.0.1")
	mustSucceed(t, f.run(f.callFor("DEL", p, conf)), "DEL")
	f.assertClean()
}
