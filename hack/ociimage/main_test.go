package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The archive is an OCI image layout whose index names the image, whose
// manifest's digests are its blobs' and whose config's diff_id is the
// layer's; the layer holds the tree as it is (modes, links), owned by root
// at the given mtime; and the same tree gives the same bytes.
func TestWriteLayout(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "usr/local/bin"), 0o755))
	must(os.WriteFile(filepath.Join(root, "usr/local/bin/agent"), []byte("#!agent"), 0o755))
	must(os.Symlink("agent", filepath.Join(root, "usr/local/bin/alias")))
	must(os.Mkdir(filepath.Join(root, "tmp"), 0o755))
	must(os.Chmod(filepath.Join(root, "tmp"), 0o777|fs.ModeSticky))
	o := options{rootfs: root, tag: "registry.example:5000/nb/nodebridge:v1-2-gabc", entrypoint: "/usr/local/bin/agent",
		mtime: time.Unix(1700000000, 0).UTC(), out: filepath.Join(t.TempDir(), "image.tar")}
	must(write(o))

	files := readTar(t, o.out)
	if string(files["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout = %s", files["oci-layout"])
	}
	blobOf := func(digest string) []byte {
		t.Helper()
		b, ok := files["blobs/sha256/"+digest[len("sha256:"):]]
		if sum := sha256.Sum256(b); !ok || "sha256:"+hex.EncodeToString(sum[:]) != digest {
			t.Fatalf("blob %s missing or not matching its digest", digest)
		}
		return b
	}
	type desc struct {
		Digest      string            `json:"digest"`
		Annotations map[string]string `json:"annotations"`
	}
	var index struct{ Manifests []desc }
	must(json.Unmarshal(files["index.json"], &index))
	if len(index.Manifests) != 1 || index.Manifests[0].Annotations["io.containerd.image.name"] != o.tag ||
		index.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "v1-2-gabc" {
		t.Fatalf("index = %s", files["index.json"])
	}
	var manifest struct {
		Config desc
		Layers []desc
	}
	must(json.Unmarshal(blobOf(index.Manifests[0].Digest), &manifest))
	var config struct {
		Config struct{ Entrypoint []string }
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	must(json.Unmarshal(blobOf(manifest.Config.Digest), &config))
	if len(config.Config.Entrypoint) != 1 || config.Config.Entrypoint[0] != o.entrypoint || len(manifest.Layers) != 1 {
		t.Fatalf("config %+v, manifest %+v", config, manifest)
	}
	zr, err := gzip.NewReader(bytes.NewReader(blobOf(manifest.Layers[0].Digest)))
	must(err)
	layerTar, err := io.ReadAll(zr)
	must(err)
	if sum := sha256.Sum256(layerTar); config.RootFS.DiffIDs[0] != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Errorf("diff_id %s is not the layer's", config.RootFS.DiffIDs[0])
	}
	tr := tar.NewReader(bytes.NewReader(layerTar))
	got := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(err)
		got[h.Name] = h
	}
	for name, want := range map[string]struct {
		typ  byte
		mode int64
		link string
	}{
		"tmp/": {tar.TypeDir, 0o1777, ""}, "usr/local/bin/agent": {tar.TypeReg, 0o755, ""}, "usr/local/bin/alias": {tar.TypeSymlink, 0o777, "agent"},
	} {
		h := got[name]
		if h == nil || h.Typeflag != want.typ || h.Mode != want.mode || h.Linkname != want.link || h.Uid != 0 || !h.ModTime.Equal(o.mtime) {
			t.Errorf("layer entry %s = %+v, want type %c mode %o link %q, root's, at %v", name, h, want.typ, want.mode, want.link, o.mtime)
		}
	}

	again := o
	again.out = filepath.Join(t.TempDir(), "again.tar")
	must(write(again))
	if a, b := mustRead(t, o.out), mustRead(t, again.out); !bytes.Equal(a, b) {
		t.Error("the same tree gave two different archives")
	}
}

func readTar(t *testing.T, path string) map[string][]byte {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(mustRead(t, path)))
	files := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = b
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRefName(t *testing.T) {
	for tag, want := range map[string]string{"ghcr.io/nodebridge/nodebridge:abc123": "abc123", "localhost:5000/nb": "latest", "nb:v1": "v1"} {
		if got := refName(tag); got != want {
			t.Errorf("refName(%q) = %q, want %q", tag, got, want)
		}
	}
}
