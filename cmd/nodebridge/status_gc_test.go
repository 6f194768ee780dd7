package main_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

// TestStatus: STATUS succeeds on a fresh network, answers 50 once the pool
// is full, and needs cniVersion 1.1.0.
func TestStatus(t *testing.T) {
	t.Parallel()
	f := newFixture(t, tinySubnet)
	status := call{Command: "STATUS", Conf: mustJSON(t, f.conf("1.1.0"))}

	mustSucceed(t, f.run(status), "STATUS on a fresh network")
	f.add(f.newPod()) // takes the /30's only pod address
	if e := mustError(t, f.run(status)); e.Code != 50 {
		t.Errorf("STATUS with the pool full: code %d (%s), want 50", e.Code, e.Msg)
	}

	t.Run("dataDir unusable", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "not-a-dir")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		conf := f.conf("1.1.0")
		conf["ipam"].(map[string]any)["dataDir"] = file
		e := mustError(t, f.run(call{Command: "STATUS", Conf: mustJSON(t, conf)}))
		if e.Code != 50 || !strings.Contains(e.Msg, file) {
			t.Errorf("STATUS with dataDir a file: code %d (%s), want 50 naming %s", e.Code, e.Msg, file)
		}
	})

	t.Run("before 1.1.0", func(t *testing.T) {
		old := call{Command: "STATUS", Conf: mustJSON(t, f.conf("1.0.0"))}
		if e := mustError(t, f.run(old)); e.Code != 1 {
			t.Errorf("STATUS with cniVersion 1.0.0: code %d (%s), want 1", e.Code, e.Msg)
		}
	})
}

// TestGC gives GC a valid-attachments list naming one of two pods: the other
// loses its address and host veth. GC with an empty list then removes the
// rest, rules included.
func TestGC(t *testing.T) {
	t.Parallel()
	f := newFixture(t, podSubnet)
	keep, drop := f.newPod(), f.newPod()
	resKeep, _ := f.add(keep)
	resDrop, _ := f.add(drop)

	gc := f.conf("1.1.0")
	gc["cni.dev/valid-attachments"] = []types.GCAttachment{{ContainerID: keep.id, IfName: keep.ifName}}
	mustSucceed(t, f.run(call{Command: "GC", Conf: mustJSON(t, gc)}), "GC keeping one pod")

	keepAddr := resKeep.IPs[0].Address.IP.String()
	if got := f.allocations(); !slices.Equal(got, []string{keepAddr}) {
		t.Errorf("allocations after GC: %v, want only the kept pod's %s", got, keepAddr)
	}
	veths := vethNames(t, f.node)
	if !slices.Contains(veths, resKeep.Interfaces[1].Name) {
		t.Errorf("GC removed the kept pod's host veth %s; veths: %v", resKeep.Interfaces[1].Name, veths)
	}
	if slices.Contains(veths, resDrop.Interfaces[1].Name) {
		t.Errorf("GC left the dropped pod's host veth %s", resDrop.Interfaces[1].Name)
	}
	ping(t, keep.ns, resKeep.IPs[0].Gateway.String())

	gc["cni.dev/valid-attachments"] = []types.GCAttachment{}
	mustSucceed(t, f.run(call{Command: "GC", Conf: mustJSON(t, gc)}), "GC keeping none")
	f.assertClean()
}
