package agent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestRenderConflist(t *testing.T) {
	c := Defaults()
	c.NetworkName, c.Bridge, c.IPAMDataDir, c.IPMasqBackend = "mynet", "br7", "/data", "nftables"
	d := desired{podCIDRs: pfx(t, "10.244.1.0/24", "fd00:10:244:1::/64"), clusterCIDRs: pfx(t, "10.244.0.0/16", "fd00:10:244::/56")}
	b, err := renderConflist(&c, &d, 1450)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		CNIVersion  string           `json:"cniVersion"`
		CNIVersions []string         `json:"cniVersions"`
		Name        string           `json:"name"`
		Plugins     []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	if got.CNIVersion != "1.0.0" || got.Name != "mynet" || len(got.Plugins) != 2 {
		t.Fatalf("header: got %s", b)
	}
	// containerd 1.6 reads cniVersion only and rejects 1.1.0 results; newer
	// libcni picks the highest of cniVersions.
	if !slices.Equal(got.CNIVersions, []string{"1.0.0", "1.1.0"}) {
		t.Errorf("cniVersions = %q, want [1.0.0 1.1.0]", got.CNIVersions)
	}
	nb, pm := got.Plugins[0], got.Plugins[1]
	for key, want := range map[string]string{
		"type": `"nodebridge"`, "bridge": `"br7"`, "isGateway": "true", "isDefaultGateway": "true", "ipMasq": "true",
		"ipMasqBackend": `"nftables"`, "mtu": "1450", "hairpinMode": "true",
		"nonMasqueradeCIDRs": `["10.244.0.0/16","fd00:10:244::/56"]`,
		"ipam":               `{"dataDir":"/data","ranges":[[{"subnet":"10.244.1.0/24"}],[{"subnet":"fd00:10:244:1::/64"}]],"type":"host-local"}`,
	} {
		if v, _ := json.Marshal(nb[key]); string(v) != want {
			t.Errorf("nodebridge %s: got %s, want %s", key, v, want)
		}
	}
	if v, _ := json.Marshal(pm); string(v) != `{"capabilities":{"portMappings":true},"snat":true,"type":"portmap"}` {
		t.Errorf("portmap: got %s", v)
	}
	c.IPMasqBackend = ""
	b2, _ := renderConflist(&c, &d, 1450)
	var unset struct{ Plugins []map[string]any }
	if json.Unmarshal(b2, &unset) != nil || unset.Plugins[0]["ipMasqBackend"] != nil {
		t.Errorf("ipMasqBackend written while unset: %s", b2)
	}
}

func TestWriteIfChanged(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "10-nodebridge.conflist")
	steps := []struct {
		data        string
		wantChanged bool
	}{{"one\n", true}, {"one\n", false}, {"two\n", true}}
	var mtime time.Time
	for i, s := range steps {
		changed, err := writeIfChanged(path, []byte(s.data))
		if err != nil || changed != s.wantChanged {
			t.Fatalf("step %d: got changed=%v err=%v, want changed=%v", i, changed, err, s.wantChanged)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if !s.wantChanged && !st.ModTime().Equal(mtime) {
			t.Errorf("step %d: unchanged content rewritten", i)
		}
		mtime = st.ModTime()
		if b, _ := os.ReadFile(path); string(b) != s.data || st.Mode().Perm() != 0o644 {
			t.Errorf("step %d: got %q mode %v", i, b, st.Mode())
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temp files left: %v", entries)
	}
}

func TestWriteIfChangedCreatesDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "net.d", "10-x.conflist")
	if changed, err := writeIfChanged(path, []byte("x")); err != nil || !changed {
		t.Fatalf("got %v, %v", changed, err)
	}
}
