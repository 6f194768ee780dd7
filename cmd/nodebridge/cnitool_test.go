package main_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// TestCNITool drives the plugin through libcni, as a runtime would, with the
// conflist from testdata/cnitool: add, check, status, del, then add and gc.
func TestCNITool(t *testing.T) {
	t.Parallel()
	tool := testenv.Tool(t, "cnitool")
	f := newFixture(t, podSubnet)
	netconf := f.cnitoolConf(t, filepath.Join("..", "..", "testdata", "cnitool", "nodebridge.conflist"))
	cache := t.TempDir() // stands in for /var/lib, where libcni caches results
	p := f.newPod()
	podPath := testenv.Path(p.ns)
	cnitool := func(verb string) []byte {
		t.Helper()
		return f.cnitool(tool, cache, netconf, verb, f.name, podPath)
	}

	res, err := current.NewResult(cnitool("add"))
	if err != nil {
		t.Fatalf("decode cnitool add result: %v", err)
	}
	if r := res.(*current.Result); len(r.IPs) != 1 || len(r.Interfaces) != 3 || r.Interfaces[2].Sandbox != podPath {
		t.Errorf("cnitool add result: %+v, want one IP and a container interface in %s", r, podPath)
	}
	if m, _ := filepath.Glob(filepath.Join(cache, "cni", "results", "*")); len(m) == 0 {
		t.Errorf("libcni cached no result under %s: was /var/lib really hidden?", cache)
	}
	cnitool("check")
	cnitool("status")
	cnitool("del")
	f.assertClean()

	cnitool("add")
	cnitool("gc") // DELs every cached attachment, then GC with none valid
	f.assertClean()
}

// cnitoolConf copies the conflist at src into a temp NETCONFPATH dir, with
// the fixture's dataDir, and points the fixture at its network and bridge.
func (f *fixture) cnitoolConf(t *testing.T, src string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatalf("read %s: %v", src, err)
	}
	var list map[string]any
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatalf("decode %s: %v", src, err)
	}
	plugins, _ := list["plugins"].([]any)
	if len(plugins) != 1 {
		t.Fatalf("%s: %d plugins, want 1", src, len(plugins))
	}
	plugin, _ := plugins[0].(map[string]any)
	ipam, _ := plugin["ipam"].(map[string]any)
	name, _ := list["name"].(string)
	bridge, _ := plugin["bridge"].(string)
	if ipam == nil || name == "" || bridge == "" {
		t.Fatalf("%s: want name, plugins[0].bridge and plugins[0].ipam", src)
	}
	ipam["dataDir"] = f.dataDir
	f.name, f.bridge = name, bridge
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, filepath.Base(src)), mustJSON(t, list), 0o644); err != nil {
		t.Fatalf("write conflist copy: %v", err)
	}
	return dir
}

// cnitool runs cnitool inside the node netns and inside a private mount
// namespace where cache is bind-mounted over /var/lib, so libcni's result
// cache never reaches the machine's /var/lib/cni. It fails t unless cnitool
// exits 0, and returns its stdout.
func (f *fixture) cnitool(tool, cache, netconf string, args ...string) []byte {
	f.t.Helper()
	argv := []string{"netns", "exec", f.node, "unshare", "-m", "--propagation", "private",
		"sh", "-c", `mount --bind "$0" /var/lib && exec "$@"`, cache, tool}
	cmd := exec.Command("ip", append(argv, args...)...)
	cmd.Env = append(envWithoutCNI(), "NETCONFPATH="+netconf, "CNI_PATH="+filepath.Dir(pluginBin))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		f.t.Fatalf("cnitool %v: %v\nstdout: %s\nstderr: %s", args, err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes()
}
