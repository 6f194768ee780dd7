package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// FindTool finds a tool scripts/install-deps.sh installs (cnitool, the
// reference plugins): in $NODEBRIDGE_TOOLS, then ~/.cache/nodebridge/bin,
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

// Tool is FindTool for a test: without the tool t skips, or fails under
// CI=true, where every test must run.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := FindTool(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%v (CI=true: failing instead of skipping)", err)
	}
	t.Skip(err)
	return ""
}
