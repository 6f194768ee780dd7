// Command ociimage packs a root filesystem directory into a one-layer OCI
// image and writes it as an OCI image layout archive, which containerd
// (ctr images import), podman and skopeo load without a registry or a
// Docker daemon. make image (scripts/build-image.sh) builds the rootfs.
//
//	ociimage -rootfs DIR -tag NAME:TAG -entrypoint /usr/local/bin/nodebridge-agent -o image.tar
//
// The layer is reproducible: entries sorted, owned by root, with the mtime
// given by -mtime (the commit's time in make image), so the same tree gives
// the same digests.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"time"
)

// options are the command's flags.
type options struct {
	rootfs, tag, out string
	entrypoint       string
	mtime            time.Time
}

func main() {
	var o options
	var mtime int64
	flag.StringVar(&o.rootfs, "rootfs", "", "the image's root filesystem")
	flag.StringVar(&o.tag, "tag", "", "the image name, as NAME:TAG")
	flag.StringVar(&o.entrypoint, "entrypoint", "", "the image's entrypoint")
	flag.StringVar(&o.out, "o", "", "the OCI layout archive to write")
	flag.Int64Var(&mtime, "mtime", 0, "mtime of every layer entry, Unix seconds")
	flag.Parse()
	o.mtime = time.Unix(mtime, 0).UTC()
	if o.rootfs == "" || o.tag == "" || o.out == "" || o.entrypoint == "" {
		fmt.Fprintln(os.Stderr, "ociimage: -rootfs, -tag, -entrypoint and -o are required")
		os.Exit(2)
	}
	if err := write(o); err != nil {
		fmt.Fprintln(os.Stderr, "ociimage:", err)
		os.Exit(1)
	}
}

// blob is content stored under its digest.
type blob struct {
	mediaType string
	data      []byte
}

func (b blob) digest() string {
	sum := sha256.Sum256(b.data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// descriptor is an OCI content descriptor of b.
func (b blob) descriptor(annotations map[string]string) map[string]any {
	d := map[string]any{"mediaType": b.mediaType, "digest": b.digest(), "size": len(b.data)}
	if annotations != nil {
		d["annotations"] = annotations
	}
	return d
}

// write builds the layer, the config, the manifest and the index, and
// writes the layout archive to o.out (through a temp file, renamed).
func write(o options) error {
	layerTar, err := layer(o.rootfs, o.mtime)
	if err != nil {
		return err
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression) // a valid level: no error
	if _, err := zw.Write(layerTar); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	diffID := sha256.Sum256(layerTar)
	layerBlob := blob{"application/vnd.oci.image.layer.v1.tar+gzip", gz.Bytes()}
	config, err := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"created":      o.mtime.Format(time.RFC3339),
		"config": map[string]any{
			"Entrypoint": []string{o.entrypoint},
			"Env":        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		},
		"rootfs":  map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + hex.EncodeToString(diffID[:])}},
		"history": []map[string]any{{"created": o.mtime.Format(time.RFC3339), "created_by": "make image (scripts/build-image.sh)"}},
	})
	if err != nil {
		return err
	}
	configBlob := blob{"application/vnd.oci.image.config.v1+json", config}
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        configBlob.descriptor(nil),
		"layers":        []any{layerBlob.descriptor(nil)},
	})
	if err != nil {
		return err
	}
	manifestBlob := blob{"application/vnd.oci.image.manifest.v1+json", manifest}
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests": []any{manifestBlob.descriptor(map[string]string{
			"io.containerd.image.name":          o.tag, // the name ctr images import gives it
			"org.opencontainers.image.ref.name": refName(o.tag),
		})},
	})
	if err != nil {
		return err
	}
	return writeLayout(o.out, index, []blob{layerBlob, configBlob, manifestBlob})
}

// refName is the OCI ref name of tag: its part after the last colon that
// follows the last slash, as the layout spec has it.
func refName(tag string) string {
	for i := len(tag) - 1; i >= 0 && tag[i] != '/'; i-- {
		if tag[i] == ':' {
			return tag[i+1:]
		}
	}
	return "latest"
}

// writeLayout writes the layout archive: oci-layout, index.json, blobs.
func writeLayout(out string, index []byte, blobs []blob) (err error) {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".ociimage-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, os.Remove(tmp.Name()))
		}
	}()
	tw := tar.NewWriter(tmp)
	files := []struct {
		name string
		data []byte
	}{{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)}, {"index.json", index}}
	for _, b := range blobs {
		files = append(files, struct {
			name string
			data []byte
		}{"blobs/sha256/" + b.digest()[len("sha256:"):], b.data})
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg}); err != nil {
			return errors.Join(err, tmp.Close())
		}
		if _, err := tw.Write(f.data); err != nil {
			return errors.Join(err, tmp.Close())
		}
	}
	if err := errors.Join(tw.Close(), tmp.Close()); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}

// layer is the uncompressed tar of the tree at root: regular files,
// directories and symlinks, sorted by path, owned by root, every mtime
// mtime. Anything else in the tree is an error.
func layer(root string, mtime time.Time) ([]byte, error) {
	var paths []string
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != root {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk %s: %w", root, err)
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		if err := addEntry(tw, root, p, mtime); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// addEntry writes p, a path under root, to tw.
func addEntry(tw *tar.Writer, root, p string, mtime time.Time) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(root, p)
	if err != nil {
		return err
	}
	mode := int64(fi.Mode().Perm())
	for _, b := range []struct {
		m   fs.FileMode
		bit int64
	}{{fs.ModeSetuid, 0o4000}, {fs.ModeSetgid, 0o2000}, {fs.ModeSticky, 0o1000}} {
		if fi.Mode()&b.m != 0 {
			mode |= b.bit
		}
	}
	h := &tar.Header{Name: filepath.ToSlash(rel), Mode: mode, ModTime: mtime, Format: tar.FormatPAX}
	var content io.Reader
	switch {
	case fi.Mode().IsRegular():
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h.Typeflag, h.Size, content = tar.TypeReg, fi.Size(), f
	case fi.IsDir():
		h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
	case fi.Mode()&fs.ModeSymlink != 0:
		if h.Linkname, err = os.Readlink(p); err != nil {
			return err
		}
		h.Typeflag = tar.TypeSymlink
	default:
		return fmt.Errorf("%s: not a file, directory or symlink (%v)", p, fi.Mode())
	}
	if err := tw.WriteHeader(h); err != nil {
		return fmt.Errorf("layer entry %s: %w", rel, err)
	}
	if content != nil {
		if _, err := io.Copy(tw, content); err != nil {
			return fmt.Errorf("layer entry %s: %w", rel, err)
		}
	}
	return nil
}
