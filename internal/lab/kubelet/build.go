package kubelet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/nodebridge/nodebridge/internal/lab"
	"github.com/nodebridge/nodebridge/internal/testenv"
)

// k8sBinaries are the release binaries a cluster runs, besides kubectl for
// the people and scripts poking at it.
func k8sBinaries() []string {
	return []string{"kube-apiserver", "etcd", "kubelet", "kube-controller-manager", "kube-scheduler", "kubectl"}
}

// K8sBinaries returns the dir holding the binaries of k8sBinaries, building
// the missing ones through scripts/build-k8s.sh (see lab.Binaries).
func K8sBinaries(ctx context.Context) (string, error) {
	return lab.Binaries(ctx, k8sBinaries()...)
}

// BuildCNI fills dir, a node's CNI bin dir, with nodebridge built static
// from this tree and the reference plugins containerd's CRI runs beside it:
// portmap, chained in the conflist, and loopback, which CRI runs for every
// pod's lo. Each reference plugin comes from the tools dir of
// scripts/install-deps.sh or else is built from the module cache.
func BuildCNI(ctx context.Context, dir string) error {
	root, err := lab.RepoRoot()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(dir, "nodebridge"), "./cmd/nodebridge")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build nodebridge into %s: %w\n%s", dir, err, out)
	}
	var missing []string
	for _, p := range []string{"meta/portmap", "main/loopback"} {
		name := filepath.Base(p)
		tool, err := testenv.FindTool(name)
		if err != nil {
			missing = append(missing, "github.com/containernetworking/plugins/plugins/"+p+"@v1.9.1")
			continue
		}
		if err := os.Symlink(tool, filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("link %s into %s: %w", name, dir, err)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	// GOFLAGS off: an install at a version ignores the tree's go.mod.
	cmd = exec.CommandContext(ctx, "go", append([]string{"install"}, missing...)...)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go install %v into %s: %w\n%s", missing, dir, err, out)
	}
	return nil
}

// BuildAgent builds nodebridge-agent into dir and returns its path, or
// ErrNoAgent while the tree has no agent command yet.
func BuildAgent(ctx context.Context, dir string) (string, error) {
	root, err := lab.RepoRoot()
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(root, "cmd", "nodebridge-agent", "main.go")); err != nil {
		return "", ErrNoAgent
	}
	out := filepath.Join(dir, "nodebridge-agent")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", lab.VersionLDFlags(ctx, root), "-o", out, "./cmd/nodebridge-agent")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build nodebridge-agent into %s: %w\n%s", dir, err, b)
	}
	return out, nil
}

// ErrNoAgent says the tree has no cmd/nodebridge-agent to build.
var ErrNoAgent = errors.New("no cmd/nodebridge-agent in this tree")
