package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// FindTool finds a tool scripts/install-deps.sh installs (cnitool, the
// reference portmap): in $NODEBRIDGE_TOOLS, then ~/.cache/nodebridge/bin,
// then PATH.
func FindTool(name string) (string, error) {
	dirs := []string{os.Getenv("NODEBRIDGE_TOOLS")}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, ".cache", "nodebridge", "bin"))
	}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		if p, err := exec.LookPath(filepath.Join(d, name)); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found in $NODEBRIDGE_TOOLS, ~/.cache/nodebridge/bin or PATH: run scripts/install-deps.sh", name)
}

// BuildBinaries builds nodebridge and nodebridge-agent (static, without the
// race detector: they are exec'd, not tested here) into dir and links the
// reference portmap (see FindTool) beside them, so dir serves as CNI_PATH
// and holds the agent.
func BuildBinaries(ctx context.Context, dir, portmap string) error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+"/", "./cmd/nodebridge", "./cmd/nodebridge-agent")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build nodebridge and nodebridge-agent: %w\n%s", err, out)
	}
	if err := os.Symlink(portmap, filepath.Join(dir, "portmap")); err != nil {
		return fmt.Errorf("link portmap into %s: %w", dir, err)
	}
	return nil
}
