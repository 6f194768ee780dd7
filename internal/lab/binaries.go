package lab

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// Binaries returns the dir holding the named release binaries
// (kube-apiserver and etcd when none are named), building them first through
// scripts/build-k8s.sh when its cache (outside the tree) lacks them. The
// script serializes builds with a lock, so parallel callers wait for one
// build.
func Binaries(ctx context.Context, names ...string) (string, error) {
	if len(names) == 0 {
		names = []string{"kube-apiserver", "etcd"}
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	script := filepath.Join(root, "scripts", "build-k8s.sh")
	cmd := exec.CommandContext(ctx, "bash", append([]string{script}, names...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("run %s: %w\n%s", script, err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	dir := filepath.Join(lines[len(lines)-1], "bin")
	for _, b := range names {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return "", fmt.Errorf("%s did not provide %s: %w", script, b, err)
		}
	}
	return dir, nil
}

// Version is the version of the tree at root as the Makefile stamps it:
// git describe, else "dev".
func Version(ctx context.Context, root string) string {
	cmd := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty")
	cmd.Dir = root
	if out, err := cmd.Output(); err == nil && len(bytes.TrimSpace(out)) > 0 {
		return string(bytes.TrimSpace(out))
	}
	return "dev"
}

// VersionLDFlags stamps the binaries built from the tree at root with its
// Version, as the Makefile does.
func VersionLDFlags(ctx context.Context, root string) string {
	return "-X main.buildVersion=" + Version(ctx, root)
}

// BuildBinaries builds nodebridge and nodebridge-agent (static, without the
// race detector: they are exec'd, not tested here) into dir and links the
// reference plugins given (portmap, bandwidth: see testenv.FindTool) beside
// them by name, so dir serves as CNI_PATH and holds the agent.
func BuildBinaries(ctx context.Context, dir string, plugins ...string) error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-ldflags", VersionLDFlags(ctx, root), "-o", dir+"/", "./cmd/nodebridge", "./cmd/nodebridge-agent")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build nodebridge and nodebridge-agent: %w\n%s", err, out)
	}
	for _, p := range plugins {
		if err := os.Symlink(p, filepath.Join(dir, filepath.Base(p))); err != nil {
			return fmt.Errorf("link %s into %s: %w", p, dir, err)
		}
	}
	return nil
}

// BuildWithTools is BuildBinaries with the reference portmap and bandwidth
// plugins found by testenv.FindTool linked beside, as a node's conflist
// chains them; it returns the cnitool that runs pods.
func BuildWithTools(ctx context.Context, dir string) (cnitool string, err error) {
	if cnitool, err = testenv.FindTool("cnitool"); err != nil {
		return "", err
	}
	var plugins []string
	for _, name := range []string{"portmap", "bandwidth"} {
		p, err := testenv.FindTool(name)
		if err != nil {
			return "", err
		}
		plugins = append(plugins, p)
	}
	return cnitool, BuildBinaries(ctx, dir, plugins...)
}
