package kubelet

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// The images the upstream e2e suite runs, under the names
// k8s.io/kubernetes/test/utils/image of v1.36.3 gives them, so that no spec
// pulls: the specs' pods use IfNotPresent.
const (
	AgnhostImage  = "registry.k8s.io/e2e-test-images/agnhost:2.63.0"
	E2EBusybox    = "registry.k8s.io/e2e-test-images/busybox:1.37.0-1"
	GlibcDNSImage = "registry.k8s.io/e2e-test-images/glibc-dns-testing:2.0.0"
	E2EPauseImage = "registry.k8s.io/pause:3.10.2"
	CoreDNSImage  = "registry.k8s.io/coredns/coredns:v1.14.2"
	// RegressionImage sends the out-of-window packet of the Conntrack
	// invalid-state spec (kubernetes issue 74839).
	RegressionImage = "registry.k8s.io/e2e-test-images/regression-issue-74839:1.4"
	// NginxImage is a stand-in: the Endpoints specs only need its pods to
	// run, and agnhost's test-webserver serves on nginx's port 80.
	NginxImage = "registry.k8s.io/e2e-test-images/nginx:1.15-4"
)

// e2eTools are the machine's programs (with their shared libraries) the
// e2e images carry beside busybox's applets, at the path each image's PATH
// finds first: bash as /bin/sh, since busybox ash runs its own applets
// (an nc without -v among them) ahead of PATH; dig for the DNS specs, in
// agnhost and in the glibc image; curl and OpenBSD nc, which the Services
// specs run in agnhost; iproute2's ip and ss (busybox's ip is partial);
// getent for the glibc image's host lookups; GNU wget, since the wget of
// Debian's busybox 1.35 crashes on -T, which the Services specs pass (one
// try only, by /etc/wgetrc, as busybox's wget makes).
func e2eTools() map[string]string {
	return map[string]string{
		"/usr/bin/bash":       "bin/bash",
		"/usr/bin/dig":        "usr/bin/dig",
		"/usr/bin/curl":       "usr/bin/curl",
		"/usr/bin/nc.openbsd": "usr/bin/nc",
		"/usr/bin/getent":     "usr/bin/getent",
		"/usr/bin/iperf":      "usr/bin/iperf",
		"/usr/bin/nslookup":   "usr/bin/nslookup",
		"/usr/sbin/ip":        "usr/sbin/ip",
		"/usr/bin/ss":         "usr/bin/ss",
		"/usr/bin/wget":       "usr/bin/wget",
	}
}

// E2EImages are what BuildE2EImages packs: the programs agnhost, coredns,
// busybox (static) and pause, built elsewhere, and the key and certificate
// agnhost's porter serves TLS with (scripts/build-k8s.sh puts them beside
// agnhost).
type E2EImages struct {
	Agnhost, CoreDNS, Busybox, Pause string
	PorterCert, PorterKey            string
	Regression                       string // regression-issue-74839
}

// BuildE2EImages writes to out a docker-archive tar with AgnhostImage
// (running /agnhost pause unless the pod says otherwise, as upstream's),
// E2EBusybox and GlibcDNSImage (a shell), E2EPauseImage, CoreDNSImage,
// RegressionImage and NginxImage, all on one layer: busybox's applets in
// /bin, the e2eTools with their libraries, and the programs in /.
func BuildE2EImages(ctx context.Context, out string, in E2EImages) error {
	layer, err := e2eLayer(ctx, in, e2eTools())
	if err != nil {
		return err
	}
	return writeArchive(out, layer, []imageSpec{
		{AgnhostImage, map[string]any{"Entrypoint": []string{"/agnhost"}, "Cmd": []string{"pause"}}},
		{E2EBusybox, map[string]any{"Cmd": []string{"sh"}}},
		{GlibcDNSImage, map[string]any{"Cmd": []string{"sh"}}},
		{E2EPauseImage, map[string]any{"Entrypoint": []string{"/pause"}}},
		{CoreDNSImage, map[string]any{"Entrypoint": []string{"/coredns"}}},
		{RegressionImage, map[string]any{"Entrypoint": []string{"/regression-issue-74839"}}},
		{NginxImage, map[string]any{"Entrypoint": []string{"/agnhost", "test-webserver"}}},
	})
}

// e2eLayer is the e2e images' one layer, as an uncompressed tar, with the
// tools (path on the machine → path in the image).
func e2eLayer(ctx context.Context, in E2EImages, tools map[string]string) ([]byte, error) {
	list, err := exec.CommandContext(ctx, in.Busybox, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("list applets of %s: %w", in.Busybox, err)
	}
	read := map[string][]byte{}
	for _, p := range []string{in.Busybox, in.Pause, in.Agnhost, in.CoreDNS, in.PorterCert, in.PorterKey, in.Regression} {
		if read[p], err = os.ReadFile(p); err != nil {
			return nil, fmt.Errorf("read %s for the e2e images: %w", p, err)
		}
	}
	// Files of the tools and their libraries, by path in the image.
	files := map[string]string{}
	for src, dst := range tools {
		libs, err := sharedLibs(ctx, src)
		if err != nil {
			return nil, err
		}
		files[dst] = src
		for _, l := range libs {
			files[strings.TrimPrefix(l, "/")] = l
		}
	}
	var applets []string
	for _, a := range strings.Fields(string(list)) {
		// sh is bash's; the tools' own names are theirs.
		if a != "sh" && files["bin/"+a] == "" && files["usr/bin/"+a] == "" {
			applets = append(applets, a)
		}
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := writeRootfs(tw, read[in.Busybox], read[in.Pause], applets); err != nil {
		return nil, fmt.Errorf("write e2e layer: %w", err)
	}
	top := map[string][]byte{"agnhost": read[in.Agnhost], "coredns": read[in.CoreDNS],
		"localhost.crt": read[in.PorterCert], "localhost.key": read[in.PorterKey],
		"regression-issue-74839": read[in.Regression]}
	if err := writeTree(tw, files, top); err != nil {
		return nil, fmt.Errorf("write e2e layer: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("finish e2e layer: %w", err)
	}
	return buf.Bytes(), nil
}

// writeTree writes the dirs above each file of files (path in the image →
// path on the machine), the files, /bin/sh → bash, an nsswitch.conf (files,
// then DNS), a wgetrc, and the files of top in /.
func writeTree(tw *tar.Writer, files map[string]string, top map[string][]byte) error {
	names := slices.Sorted(maps.Keys(files))
	dirs := map[string]bool{"bin": true, "etc": true} // writeRootfs wrote them
	for _, n := range names {
		var parents []string
		for d := path.Dir(n); d != "." && !dirs[d]; d = path.Dir(d) {
			parents = append(parents, d)
			dirs[d] = true
		}
		for _, d := range slices.Backward(parents) {
			if err := writeHeader(tw, &tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755}); err != nil {
				return fmt.Errorf("dir %s: %w", d, err)
			}
		}
		b, err := os.ReadFile(files[n])
		if err != nil {
			return fmt.Errorf("read %s: %w", files[n], err)
		}
		if err := addFile(tw, n, 0o755, b); err != nil {
			return fmt.Errorf("file %s: %w", n, err)
		}
	}
	if err := writeHeader(tw, &tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/sh", Linkname: "bash", Mode: 0o777}); err != nil {
		return fmt.Errorf("link bin/sh: %w", err)
	}
	etc := map[string]string{"etc/nsswitch.conf": "hosts: files dns\n", "etc/wgetrc": "tries = 1\n"}
	for _, n := range slices.Sorted(maps.Keys(etc)) {
		if err := addFile(tw, n, 0o644, []byte(etc[n])); err != nil {
			return fmt.Errorf("file %s: %w", n, err)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(top)) {
		if err := addFile(tw, n, 0o755, top[n]); err != nil {
			return fmt.Errorf("file %s: %w", n, err)
		}
	}
	return nil
}

// sharedLibs lists the shared libraries bin loads (the loader included),
// as ldd prints them: absolute paths on this machine.
func sharedLibs(ctx context.Context, bin string) ([]string, error) {
	out, err := exec.CommandContext(ctx, "ldd", bin).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s (install it: scripts/install-deps.sh conformance): %w", bin, err)
	}
	var libs []string
	for _, l := range strings.Split(string(out), "\n") {
		for _, f := range strings.Fields(l) {
			if filepath.IsAbs(f) {
				libs = append(libs, f)
			}
		}
	}
	return libs, nil
}
