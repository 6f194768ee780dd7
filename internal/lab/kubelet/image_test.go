package kubelet

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// busyboxPath finds the static busybox the image packs (Debian's
// busybox-static), skipping without it, or failing under CI=true.
func busyboxPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("busybox")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("busybox (Debian busybox-static) not installed: %v", err)
		}
		t.Skipf("busybox (Debian busybox-static) not installed: %v", err)
	}
	return p
}

// readTar maps each regular file and symlink of a tar to its content or
// link target.
func readTar(t *testing.T, b []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		switch h.Typeflag {
		case tar.TypeReg:
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatalf("read %s from tar: %v", h.Name, err)
			}
			out[h.Name] = string(data)
			if h.Name == "pause" && h.Mode&0o111 == 0 {
				t.Errorf("pause has mode %o: not executable", h.Mode)
			}
		case tar.TypeSymlink:
			out[h.Name] = "-> " + h.Linkname
		}
	}
}

func TestBuildImageIsADockerArchiveOfBothImages(t *testing.T) {
	bb := busyboxPath(t)
	dir := t.TempDir()
	pause := filepath.Join(dir, "pause")
	if err := os.WriteFile(pause, []byte("not really pause"), 0o755); err != nil {
		t.Fatal(err)
	}
	first, second := filepath.Join(dir, "a.tar"), filepath.Join(dir, "b.tar")
	for _, out := range []string{first, second} {
		if err := BuildImage(context.Background(), out, bb, pause); err != nil {
			t.Fatal(err)
		}
	}
	a, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(second); err != nil || !bytes.Equal(a, b) {
		t.Errorf("two builds differ (err %v): the archive is not reproducible", err)
	}
	files := readTar(t, a)
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal([]byte(files["manifest.json"]), &manifest); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	want := map[string]string{PauseImage: "/pause", BusyboxImage: "sh"}
	if len(manifest) != len(want) {
		t.Fatalf("manifest.json has %d images, want %d", len(manifest), len(want))
	}
	for _, m := range manifest {
		checkImage(t, files, m.Config, m.RepoTags, m.Layers, want)
	}
	layer := readTar(t, []byte(files["layer.tar"]))
	if layer["pause"] != "not really pause" {
		t.Errorf("layer /pause = %q, want the pause binary given", layer["pause"])
	}
	for _, applet := range []string{"bin/sh", "bin/sleep", "bin/ip", "bin/ping", "bin/nc", "bin/wget"} {
		if layer[applet] != "-> busybox" {
			t.Errorf("layer %s = %q, want a link to busybox", applet, layer[applet])
		}
	}
	if bbData, _ := os.ReadFile(bb); layer["bin/busybox"] != string(bbData) {
		t.Error("layer bin/busybox differs from the busybox given")
	}
}

// checkImage checks one manifest entry: one tag of want, its config's only
// diff ID the digest of its only layer, and what it runs as want says.
func checkImage(t *testing.T, files map[string]string, config string, tags, layers []string, want map[string]string) {
	t.Helper()
	if len(tags) != 1 || want[tags[0]] == "" || len(layers) != 1 {
		t.Fatalf("manifest entry tags %v layers %v: want one of %v with one layer", tags, layers, want)
	}
	var cfg struct {
		Architecture, OS string
		Config           struct{ Entrypoint, Cmd []string }
		RootFS           struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal([]byte(files[config]), &cfg); err != nil {
		t.Fatalf("config %s of %s: %v", config, tags[0], err)
	}
	sum := sha256.Sum256([]byte(files[layers[0]]))
	if d := "sha256:" + hex.EncodeToString(sum[:]); len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != d {
		t.Errorf("%s diff_ids %v, want [%s]", tags[0], cfg.RootFS.DiffIDs, d)
	}
	if cfg.OS != "linux" || cfg.Architecture == "" {
		t.Errorf("%s platform %s/%s, want linux/<arch>", tags[0], cfg.OS, cfg.Architecture)
	}
	runs := append(cfg.Config.Entrypoint, cfg.Config.Cmd...)
	if len(runs) != 1 || runs[0] != want[tags[0]] {
		t.Errorf("%s runs %v, want [%s]", tags[0], runs, want[tags[0]])
	}
}

func TestE2ELayer(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	in := E2EImages{Busybox: busyboxPath(t), Pause: filepath.Join(dir, "pause"),
		Agnhost: filepath.Join(dir, "agnhost"), CoreDNS: filepath.Join(dir, "coredns"),
		PorterCert: filepath.Join(dir, "localhost.crt"), PorterKey: filepath.Join(dir, "localhost.key"),
		Regression: filepath.Join(dir, "regression-issue-74839")}
	for _, f := range []string{in.Pause, in.Agnhost, in.CoreDNS, in.PorterCert, in.PorterKey, in.Regression} {
		if err := os.WriteFile(f, []byte("program "+filepath.Base(f)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("bash: %v", err)
	}
	layer, err := e2eLayer(ctx, in, map[string]string{bash: "bin/bash"})
	if err != nil {
		t.Fatal(err)
	}
	files := readTar(t, layer)
	for name, want := range map[string]string{
		"bin/sh": "-> bash", "agnhost": "program agnhost", "coredns": "program coredns", "pause": "program pause",
		"etc/nsswitch.conf": "hosts: files dns\n", "bin/wget": "-> busybox", "localhost.key": "program localhost.key",
	} {
		if files[name] != want {
			t.Errorf("%s: %.40q, want %q", name, files[name], want)
		}
	}
	if b, _ := os.ReadFile(bash); files["bin/bash"] != string(b) {
		t.Errorf("bin/bash is not %s", bash)
	}
	libs, err := sharedLibs(ctx, bash)
	if err != nil {
		t.Fatal(err)
	}
	if len(libs) == 0 {
		t.Fatalf("ldd %s: no library; want libc at least", bash)
	}
	for _, l := range libs {
		if b, err := os.ReadFile(l); err != nil || files[l[1:]] != string(b) {
			t.Errorf("library %s of bash not in the layer at its path (read: %v)", l, err)
		}
	}
	// Each file's parent dirs come before it, and nothing is written twice.
	seen := map[string]bool{}
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		if seen[name] {
			t.Errorf("%s written twice", name)
		}
		seen[name] = true
		if d := filepath.Dir(name); d != "." && !seen[d] {
			t.Errorf("%s comes before its dir %s", name, d)
		}
	}
}
