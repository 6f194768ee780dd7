package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// install copies every binary a run execs, byte for byte and executable,
// into one new directory beside -bin, points the options there, and its
// remove takes the copies away.
func TestInstallCopies(t *testing.T) {
	root := t.TempDir()
	o := options{plugin: filepath.Join(root, "build", "nodebridge"), bin: filepath.Join(root, "bench", "bin"), tools: filepath.Join(root, "tools")}
	files := map[string]string{
		o.plugin: "plugin", filepath.Join(o.bin, "nop"): "nop", filepath.Join(o.bin, "floor-add"): "floor",
		filepath.Join(o.bin, "ipam-op"): "ipam", filepath.Join(o.tools, "bridge"): "bridge", filepath.Join(o.tools, "host-local"): "hl",
	}
	for path, content := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	in, remove, err := install(o)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(in.bin) != filepath.Join(root, "bench") || in.plugin == o.plugin || in.tools == o.tools {
		t.Fatalf("installed options %+v, want a new dir beside %s", in, o.bin)
	}
	for from, to := range map[string]string{
		o.plugin: in.plugin, filepath.Join(o.bin, "floor-add"): filepath.Join(in.bin, "floor-add"),
		filepath.Join(o.tools, "host-local"): filepath.Join(in.tools, "host-local"),
	} {
		want, _ := os.ReadFile(from)
		got, err := os.ReadFile(to)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %q, %v; want a copy of %s", to, got, err, from)
		}
		if fi, err := os.Stat(to); err != nil || fi.Mode().Perm()&0o111 == 0 {
			t.Errorf("%s not executable: %v", to, err)
		}
	}
	if err := remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(in.bin); !os.IsNotExist(err) {
		t.Errorf("install dir still there after remove: %v", err)
	}
}
