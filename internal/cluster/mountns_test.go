package cluster

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nodebridge/nodebridge/internal/netnstest"
)

// newHolder starts a node mount namespace in a fresh netns, ended when t
// ends, and returns it with its dir and a runner of commands inside it.
func newHolder(t *testing.T, ctx context.Context) (*proc, string, func(argv ...string) string) {
	t.Helper()
	netns := netnstest.NewNS(t, "mnt")
	dir := t.TempDir()
	h, err := startHolder(ctx, "test-node", netns, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sweep(context.Background(), h); err != nil {
			t.Error(err)
		}
		_ = h.stop(5 * time.Second) // the holder ends by the signal
	})
	return h, dir, func(argv ...string) string {
		t.Helper()
		out, err := run(ctx, append(enter(h), argv...)...)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
}

// TestMountNamespaceKeepsNodeStateOffTheMachine checks the node's mount
// namespace on its own: writes to /var/lib, /run and /var/log land in the
// node's dir, the sysctls kubelet sets read as it wants them while the
// machine's stay, and /sys shows the node's links and the cgroup v1 mounts.
func TestMountNamespaceKeepsNodeStateOffTheMachine(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, dir, in := newHolder(t, ctx)
	in("sh", "-c", "mkdir -p /var/lib/cni/networks /run/containerd /var/log/pods && touch /var/lib/cni/networks/x /run/containerd/x /var/log/pods/x")
	for _, p := range []string{"/var/lib/cni", "/run/containerd", "/var/log/pods"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s appeared on the machine", p)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "overlay_var_lib", "upper", "cni", "networks", "x")); err != nil {
		t.Errorf("write to /var/lib inside the node did not land in its dir: %v", err)
	}
	for k, want := range kubeletSysctls() {
		if got := in("cat", "/proc/sys/"+k); got != want {
			t.Errorf("node sees %s = %q, want %q", k, got, want)
		}
	}
	if got := in("ls", "/sys/class/net"); got != "lo" {
		t.Errorf("node /sys/class/net = %q, want only its own lo", got)
	}
	if got := in("sh", "-c", "mountpoint -q /sys/fs/cgroup/memory && ! mountpoint -q /sys/fs/cgroup/unified && echo ok"); got != "ok" {
		t.Errorf("node cgroup mounts: %q, want the v1 ones without the cgroup2 one", got)
	}
}

// TestSweepKillsDaemonsLeftInTheNode checks that sweep kills a process tree
// that left its parent behind, as containerd's shims do, down to a child in
// a mount namespace of its own, as a container is.
func TestSweepKillsDaemonsLeftInTheNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, _, in := newHolder(t, ctx)
	in("sh", "-c", "setsid sh -c 'sleep 300 & unshare --mount sleep 300' </dev/null >/dev/null 2>&1 &")
	mnt, err := os.Readlink("/proc/" + strconv.Itoa(h.pid()) + "/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, 20*time.Millisecond, func() error {
		if len(nodeProcs(mnt, h.pid())) < 3 {
			return os.ErrNotExist
		}
		return nil
	}); err != nil {
		t.Fatalf("the process tree did not start: %v", err)
	}
	if err := sweep(ctx, h); err != nil {
		t.Fatal(err)
	}
	if left := nodeProcs(mnt, h.pid()); len(left) != 0 {
		t.Errorf("after sweep, processes left: %v", left)
	}
}
