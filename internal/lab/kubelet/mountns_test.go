package kubelet

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// newHolder starts a node mount namespace in a fresh netns, ended when t
// ends, and returns it with its dir and a runner of commands inside it. Its
// dir's cni-conf and cni-bin are bound over the node's CNI dirs.
func newHolder(t *testing.T, ctx context.Context) (*proc, string, func(argv ...string) string) {
	t.Helper()
	netns := testenv.NewNS(t, "mnt")
	dir := t.TempDir()
	var binds []bind
	for _, b := range []bind{{"cni-conf", cniConfDir}, {"cni-bin", cniBinDir}} {
		b.src = filepath.Join(dir, b.src)
		if err := os.Mkdir(b.src, 0o755); err != nil {
			t.Fatal(err)
		}
		binds = append(binds, b)
	}
	h, err := startHolder(ctx, "test-node", netns, dir, binds)
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
// namespace on its own: writes to /var/lib, /run, /var/log, /etc and /opt
// land in the node's dir, its CNI dirs are binds of its own, the sysctls kubelet sets read as it wants them while the
// machine's stay, and /sys shows the node's links and the cgroup v1 mounts.
func TestMountNamespaceKeepsNodeStateOffTheMachine(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, dir, in := newHolder(t, ctx)
	// The machine may already have these dirs (cnitool or containerd used
	// there): what counts is that nothing the node writes shows up in them.
	dirs := []string{"/var/lib/cni", "/var/lib/cni/networks", "/run/containerd", "/var/log/pods"}
	before := dirEntries(dirs)
	name := "nb-mountns-" + strconv.Itoa(os.Getpid())
	in("sh", "-c", "mkdir -p /var/lib/cni/networks /run/containerd /var/log/pods && "+
		"touch /var/lib/cni/networks/"+name+" /run/containerd/"+name+" /var/log/pods/"+name)
	if after := dirEntries(dirs); after != before {
		t.Errorf("the node's writes changed the machine's dirs:\nbefore %s\nafter  %s", before, after)
	}
	for _, p := range []string{"/var/lib/cni/networks/", "/run/containerd/", "/var/log/pods/"} {
		if _, err := os.Lstat(p + name); err == nil {
			t.Errorf("%s%s appeared on the machine", p, name)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "overlay_var_lib", "upper", "cni", "networks", name)); err != nil {
		t.Errorf("write to /var/lib inside the node did not land in its dir: %v", err)
	}
	// The CNI dirs a DaemonSet's hostPath volumes name are the node's own,
	// whether or not the machine has them, and the rest of /etc reads as
	// the machine's.
	etc := dirEntries([]string{"/etc/cni", "/opt/cni", "/etc", "/opt"})
	in("sh", "-c", "touch /etc/cni/net.d/"+name+" /opt/cni/bin/"+name+" /etc/"+name+" /opt/"+name)
	if after := dirEntries([]string{"/etc/cni", "/opt/cni", "/etc", "/opt"}); after != etc {
		t.Errorf("the node's writes changed the machine's /etc or /opt:\nbefore %s\nafter  %s", etc, after)
	}
	for _, sub := range []string{"cni-conf", "cni-bin"} {
		if _, err := os.Stat(filepath.Join(dir, sub, name)); err != nil {
			t.Errorf("write to the node's CNI dir did not land in %s: %v", sub, err)
		}
	}
	if host, err := os.ReadFile("/etc/hostname"); err == nil {
		if got := in("cat", "/etc/hostname"); got != strings.TrimSpace(string(host)) {
			t.Errorf("node's /etc/hostname = %q, want the machine's %q", got, host)
		}
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

// dirEntries lists each dir's entries, or says it is absent: a snapshot to
// compare before and after, whatever the machine held to begin with.
func dirEntries(dirs []string) string {
	var sb strings.Builder
	for _, d := range dirs {
		ents, err := os.ReadDir(d)
		fmt.Fprintf(&sb, "%s: %v (absent: %v); ", d, names(ents), errors.Is(err, fs.ErrNotExist))
	}
	return sb.String()
}

// TestNodeHasItsOwnHostname: a hostNetwork pod reports its node's name as
// its hostname, as on a real node, and the machine keeps its own.
func TestNodeHasItsOwnHostname(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	machine, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	_, _, in := newHolder(t, ctx)
	if got := in("hostname"); got != "test-node" {
		t.Errorf("hostname in the node: %q, want test-node", got)
	}
	if got, _ := os.Hostname(); got != machine {
		t.Errorf("the machine's hostname changed: %q, was %q", got, machine)
	}
}
