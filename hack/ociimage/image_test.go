package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// TestMain fails the run if a test changed the machine's own network, or
// left what containerd makes by default (/etc/cni, /opt/containerd).
func TestMain(m *testing.M) { os.Exit(testenv.Main(m, testenv.Kubelet)) }

// TestMakeImage builds the image as make image does, imports the archive
// into a containerd of its own (its root, state and socket in a temp dir)
// and runs the image: the agent and the plugin answer --version with the
// version the image is tagged with, the reference portmap and loopback are
// there for the init container, and both iptables variants and nft run.
func TestMakeImage(t *testing.T) {
	testenv.RequireRoot(t)
	for _, tool := range []string{"containerd", "ctr", "apt-get", "dpkg-deb", "busybox", "ldconfig"} {
		testenv.Tool(t, tool)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	version := fmt.Sprintf("test-%d", os.Getpid())
	build := exec.CommandContext(ctx, "bash", "../../scripts/build-image.sh")
	build.Env = append(os.Environ(), "VERSION="+version, "IMAGE=example.test/nodebridge", "IMAGE_OUT_DIR="+t.TempDir())
	out, err := build.CombinedOutput()
	if err != nil {
		t.Fatalf("build-image.sh: %v\n%s", err, out)
	}
	archive := lineAfter(string(out), "archive ")
	image := lineAfter(string(out), "image ")
	if image != "example.test/nodebridge:"+version || archive == "" {
		t.Fatalf("build-image.sh printed image %q, archive %q:\n%s", image, archive, out)
	}
	archive, _, _ = strings.Cut(archive, " (")

	ctr := startContainerd(t, ctx)
	if out, err := ctr("images", "import", archive); err != nil {
		t.Fatalf("ctr images import: %v\n%s", err, out)
	}
	for i, tt := range []struct {
		argv []string
		want string
	}{
		{[]string{"/usr/local/bin/nodebridge-agent", "--version"}, "nodebridge-agent " + version},
		{[]string{"/opt/nodebridge/bin/nodebridge", "--version"}, "nodebridge " + version},
		{[]string{"/bin/sh", "-c", "ls /opt/nodebridge/bin"}, "loopback\nnodebridge\nportmap"},
		{[]string{"/usr/sbin/iptables-legacy-save", "--version"}, "(legacy)"},
		{[]string{"/usr/sbin/iptables-nft-restore", "--version"}, "(nf_tables)"},
		{[]string{"/usr/sbin/ip6tables-save", "--version"}, "(nf_tables)"},
		{[]string{"/usr/sbin/nft", "--version"}, "nftables v"},
	} {
		out, err := ctr(append([]string{"run", "--rm", image, fmt.Sprintf("nb-image-test-%d", i)}, tt.argv...)...)
		if err != nil || !strings.Contains(out, tt.want) {
			t.Errorf("%s in the image: %v\n%s\nwant %q", strings.Join(tt.argv, " "), err, out, tt.want)
		}
	}
}

// lineAfter returns the rest of the first line of out that starts with prefix.
func lineAfter(out, prefix string) string {
	for line := range strings.SplitSeq(out, "\n") {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			return rest
		}
	}
	return ""
}

// startContainerd starts a containerd whose root, state and socket are in
// a temp dir, in a mount namespace of its own with a tmpfs over /run
// (where its shims and ctr's fifos go), stops it when the
// test ends, and returns a ctr run in that mount namespace. Its containers
// get network namespaces of their own, no CNI.
func startContainerd(t *testing.T, ctx context.Context) func(args ...string) (string, error) {
	t.Helper()
	dir, err := os.MkdirTemp("", "nb-containerd-")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "containerd.sock")
	// No CRI plugin (it makes /etc/cni/net.d) and no "opt" plugin (it makes
	// /opt/containerd): ctr needs neither, and the machine stays as it was.
	config := fmt.Sprintf("version = 2\nroot = %q\nstate = %q\n"+
		"disabled_plugins = [\"io.containerd.grpc.v1.cri\", \"io.containerd.internal.v1.opt\"]\n[grpc]\n  address = %q\n",
		dir+"/root", dir+"/state", sock)
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs tmpfs /run && exec containerd --config "$0"`, filepath.Join(dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt) // then waited for: its exit status says nothing here
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill() // did not stop in time
			<-done
		}
		log.Close()
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove containerd dir: %v", err)
		}
	})
	ctr := func(args ...string) (string, error) {
		argv := append([]string{"-t", fmt.Sprint(cmd.Process.Pid), "-m", "ctr", "--address", sock}, args...)
		out, err := exec.CommandContext(ctx, "nsenter", argv...).CombinedOutput()
		return string(out), err
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, err := ctr("version")
		if err == nil {
			return ctr
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "containerd.log"))
			t.Fatal(errors.Join(fmt.Errorf("containerd not up after 20 s: %w", err), errors.New(string(b))))
		}
	}
}
