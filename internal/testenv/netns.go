package testenv

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// RequireRoot skips t without root, or fails it under CI=true, where every
// integration test must run.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("integration test needs root (CI=true: failing instead of skipping)")
	}
	t.Skip("needs root to create network namespaces")
}

// Path is the file a runtime would pass as CNI_NETNS for the named netns.
func Path(name string) string { return "/var/run/netns/" + name }

// NewNS creates a named netns with loopback up and deletes it when t ends,
// unless the test deleted it first (a runtime removing a pod's netns).
func NewNS(t testing.TB, prefix string) string {
	t.Helper()
	RequireRoot(t)
	name := fmt.Sprintf("%s%s-%06x", NetnsPrefix(), prefix, rand.Uint32()>>8)
	MustRun(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if _, err := os.Stat(Path(name)); errors.Is(err, os.ErrNotExist) {
			return
		}
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	Run(t, name, "ip", "link", "set", "lo", "up")
	return name
}

// NewNode creates a "node" netns, the host side for a plugin under test, with
// FORWARD policy DROP in both families so the plugin's own rules must carry
// pod traffic.
func NewNode(t testing.TB) string {
	t.Helper()
	name := NewNS(t, "node")
	Run(t, name, "iptables", "-w", "-P", "FORWARD", "DROP")
	Run(t, name, "ip6tables", "-w", "-P", "FORWARD", "DROP")
	return name
}

// Run runs argv inside the named netns and returns its combined output,
// failing t when it fails.
func Run(t testing.TB, netns string, argv ...string) string {
	t.Helper()
	return MustRun(t, append([]string{"ip", "netns", "exec", netns}, argv...)...)
}

// RunErr runs argv inside the named netns and returns its combined output
// and error: for probing whether the kernel can do something.
func RunErr(netns string, argv ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", netns}, argv...)...).CombinedOutput()
	return string(out), err
}

// MustRun runs argv in the test's own netns (never use it to change the
// root netns) and fails t when it fails.
func MustRun(t testing.TB, argv ...string) string {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// FD opens the named netns and returns its file descriptor, closed when t
// ends: for a backend that programs another netns than its caller's, as a
// plugin process running there would.
func FD(t testing.TB, name string) int {
	t.Helper()
	f, err := os.Open(Path(name))
	if err != nil {
		t.Fatalf("open netns %s: %v", name, err)
	}
	t.Cleanup(func() { f.Close() })
	return int(f.Fd())
}
