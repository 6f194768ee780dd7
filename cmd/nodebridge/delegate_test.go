package main_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// TestDelegatedIPAM runs an IPAM type other than host-local from CNI_PATH, as
// the reference bridge does: the reference host-local binary, installed
// under another name so nodebridge cannot serve it in process.
func TestDelegatedIPAM(t *testing.T) {
	t.Parallel()
	f := newFixture(t, podSubnet)
	conf := f.conf("1.1.0")
	conf["ipam"].(map[string]any)["type"] = refHostLocal(t)
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

// TestDelegatedIPAMNullEntries: an IPAM plugin whose result holds null
// entries (which the conversion from 0.4.0, or the ADD after it, would
// dereference) gets an error naming the entry, code 999 since the fault
// is the plugin's and not the config's, and its DEL; the veth made before
// is undone.
func TestDelegatedIPAMNullEntries(t *testing.T) {
	t.Parallel()
	for _, version := range []string{"0.4.0", "1.1.0"} {
		t.Run(version, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			script := "#!/bin/sh\necho \"$CNI_COMMAND\" >> " + filepath.Join(dir, "calls") + "\n" +
				"[ \"$CNI_COMMAND\" = ADD ] && echo '{\"cniVersion\": \"" + version + "\", \"interfaces\": [null], " +
				"\"ips\": [{\"address\": \"10.244.0.9/24\"}, null], \"routes\": [null]}'\nexit 0\n"
			if err := os.WriteFile(filepath.Join(dir, "nulls-ipam"), []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			f := newFixture(t, podSubnet)
			conf := f.conf("1.1.0")
			conf["ipam"] = map[string]any{"type": "nulls-ipam"}
			p := f.newPod()
			c := f.callFor("ADD", p, conf)
			c.Env = []string{"CNI_PATH=" + dir}
			o := f.run(c)
			wantCNIError(t, o, 999, []string{"ipam plugin nulls-ipam result", "interfaces[0]: null", "ips[1]: null", "routes[0]: null"})
			if calls, _ := os.ReadFile(filepath.Join(dir, "calls")); string(calls) != "ADD\nDEL\n" {
				t.Errorf("the IPAM plugin saw %q, want its ADD then its DEL", calls)
			}
			if v := vethNames(t, f.node); len(v) > 0 {
				t.Errorf("veths left in the node: %v", v)
			}
			wantOnlyLoopback(t, p)
		})
	}
}

// refHostLocal installs the reference host-local beside the plugin under
// another name, so nodebridge runs it from CNI_PATH instead of serving it
// in process, and returns that IPAM type.
func refHostLocal(t *testing.T) string {
	t.Helper()
	ref := testenv.Tool(t, "host-local")
	link := filepath.Join(filepath.Dir(pluginBin), "ref-host-local")
	if err := os.Symlink(ref, link); err != nil && !errors.Is(err, os.ErrExist) {
		t.Fatal(err)
	}
	return "ref-host-local"
}
