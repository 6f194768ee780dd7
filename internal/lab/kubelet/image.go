package kubelet

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// The images of the local archive. No registry is reachable from the nodes,
// so pods name these with imagePullPolicy: Never, and containerd's
// sandbox_image is PauseImage.
const (
	PauseImage   = "nodebridge.local/pause:1"
	BusyboxImage = "nodebridge.local/busybox:1"
)

// BuildPause compiles the pause program, static, into out.
func BuildPause(ctx context.Context, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out,
		"github.com/nodebridge/nodebridge/hack/pause")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build pause into %s: %w: %s", out, err, b)
	}
	return nil
}

// BuildImage writes to out a docker-archive tar (the `docker save` format,
// which `ctr images import` reads) holding PauseImage and BusyboxImage. Both
// share one layer: the static busybox with a link per applet in /bin, and
// the static pause program as /pause. The archive is reproducible: every
// time stamp is zero.
func BuildImage(ctx context.Context, out, busybox, pause string) error {
	layer, err := rootfsLayer(ctx, busybox, pause)
	if err != nil {
		return err
	}
	return writeArchive(out, layer, []imageSpec{
		{PauseImage, map[string]any{"Entrypoint": []string{"/pause"}}},
		{BusyboxImage, map[string]any{"Cmd": []string{"sh"}}},
	})
}

// imageSpec is one image of an archive: its name and what its container
// runs unless the pod says otherwise.
type imageSpec struct {
	name string
	run  map[string]any
}

// writeArchive writes to out a docker-archive tar (the `docker save`
// format, which `ctr images import` reads) of the images, all on the one
// layer.
func writeArchive(out string, layer []byte, images []imageSpec) error {
	sum := sha256.Sum256(layer)
	diffID := "sha256:" + hex.EncodeToString(sum[:])
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := addFile(tw, "layer.tar", 0o644, layer); err != nil {
		return fmt.Errorf("write layer into image archive: %w", err)
	}
	var manifest []map[string]any
	for i, im := range images {
		cfg, err := imageConfig(diffID, im.run)
		if err != nil {
			return err
		}
		name := fmt.Sprintf("config%d.json", i)
		if err := addFile(tw, name, 0o644, cfg); err != nil {
			return fmt.Errorf("write %s config into image archive: %w", im.name, err)
		}
		manifest = append(manifest, map[string]any{"Config": name, "RepoTags": []string{im.name}, "Layers": []string{"layer.tar"}})
	}
	mb, err := json.Marshal(manifest)
	if err != nil {
		return fmt.Errorf("encode image manifest: %w", err)
	}
	if err := addFile(tw, "manifest.json", 0o644, mb); err != nil {
		return fmt.Errorf("write manifest into image archive: %w", err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("finish image archive: %w", err)
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write image archive %s: %w", out, err)
	}
	return nil
}

// imageConfig is an image's config blob: the platform of this machine, a
// PATH, and what the container runs unless the pod says otherwise.
func imageConfig(diffID string, run map[string]any) ([]byte, error) {
	run["Env"] = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	b, err := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"created":      "1970-01-01T00:00:00Z",
		"config":       run,
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{diffID}},
	})
	if err != nil {
		return nil, fmt.Errorf("encode image config: %w", err)
	}
	return b, nil
}

// rootfsLayer is the image's only layer, as an uncompressed tar.
func rootfsLayer(ctx context.Context, busybox, pause string) ([]byte, error) {
	list, err := exec.CommandContext(ctx, busybox, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("list applets of %s: %w", busybox, err)
	}
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return nil, fmt.Errorf("read busybox: %w", err)
	}
	pp, err := os.ReadFile(pause)
	if err != nil {
		return nil, fmt.Errorf("read pause: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := writeRootfs(tw, bb, pp, strings.Fields(string(list))); err != nil {
		return nil, fmt.Errorf("write layer: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("finish layer: %w", err)
	}
	return buf.Bytes(), nil
}

// writeRootfs writes the tree of the layer: the usual top dirs, busybox
// and a link to it per applet in /bin, /pause, and a root user and group.
func writeRootfs(tw *tar.Writer, busybox, pause []byte, applets []string) error {
	for _, d := range []struct {
		name string
		mode int64
	}{{"bin", 0o755}, {"dev", 0o755}, {"etc", 0o755}, {"proc", 0o755}, {"root", 0o700}, {"sys", 0o755}, {"tmp", 0o1777}} {
		if err := writeHeader(tw, &tar.Header{Typeflag: tar.TypeDir, Name: d.name + "/", Mode: d.mode}); err != nil {
			return fmt.Errorf("dir %s: %w", d.name, err)
		}
	}
	files := []struct {
		name string
		data []byte
		mode int64
	}{
		{"bin/busybox", busybox, 0o755},
		{"pause", pause, 0o755},
		{"etc/passwd", []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"), 0o644},
		{"etc/group", []byte("root:x:0:\nnobody:x:65534:\n"), 0o644},
	}
	for _, f := range files {
		if err := addFile(tw, f.name, f.mode, f.data); err != nil {
			return fmt.Errorf("file %s: %w", f.name, err)
		}
	}
	for _, a := range applets {
		if a == "busybox" || strings.Contains(a, "/") {
			continue
		}
		h := &tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777}
		if err := writeHeader(tw, h); err != nil {
			return fmt.Errorf("link bin/%s: %w", a, err)
		}
	}
	return nil
}

// addFile writes a regular file owned by root into tw.
func addFile(tw *tar.Writer, name string, mode int64, data []byte) error {
	if err := writeHeader(tw, &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data))}); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

// writeHeader stamps h with the epoch, so the same inputs give the same
// bytes, and writes it.
func writeHeader(tw *tar.Writer, h *tar.Header) error {
	h.ModTime = time.Unix(0, 0)
	h.Format = tar.FormatUSTAR
	return tw.WriteHeader(h)
}
