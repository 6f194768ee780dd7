package kubelet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// kubeletSysctls are the machine-wide values kubelet sets at start when
// they differ (protectKernelDefaults off). The node's mount namespace shows
// files already holding them over /proc/sys, so kubelet finds nothing to
// write and the machine keeps its own values.
func kubeletSysctls() map[string]string {
	return map[string]string{
		"vm/overcommit_memory":      "1",
		"vm/panic_on_oom":           "0",
		"kernel/panic":              "10",
		"kernel/panic_on_oops":      "1",
		"kernel/keys/root_maxkeys":  "1000000",
		"kernel/keys/root_maxbytes": "25000000",
	}
}

// overlaid are the dirs whose writes land in the node's dir: containerd's
// state and shim sockets (/run/containerd), libcni's cache (/var/lib/cni),
// pod logs (/var/log/pods), and the mount points of the node's own CNI
// dirs (/etc/cni/net.d, /opt/cni/bin), which the machine may lack.
func overlaid() []string { return []string{"/run", "/var/lib", "/var/log", "/etc", "/opt"} }

// keepSubmounts are the overlaid dirs whose mounts inside (a container's
// /etc/resolv.conf and /etc/hosts, say) the node still sees: an overlay
// shows only the file system under a dir, so they are bound again on top.
// /run's are not: the machine's netns mounts are none of the node's.
func keepSubmounts() []string { return []string{"/etc", "/opt"} }

// A bind of a dir of the node's over a path of the node's mount namespace:
// its CNI conf, bin and IPAM dirs where a DaemonSet's hostPath volumes and
// containerd look for them.
type bind struct{ src, dst string }

// holderScript runs as "sh -c holderScript sh DIR NAME OVERLAID..." in the
// node's netns, in a fresh mount namespace whose mounts propagate nowhere
// and a UTS namespace of its own. It sets the hostname to NAME (what a
// hostNetwork pod reports, as on a real node), mounts a sysfs of the node's netns (so /sys/class/net shows the node's
// links) with the machine's cgroup v1 mounts under it again (kubelet and
// cadvisor need them) but not the hybrid cgroup2 one, whose hugetlb
// controller makes crun refuse every container ("cgroups in hybrid mode not
// supported"). It overlays the dirs of overlaid (those with a "keep" file
// get the mounts inside them back), binds DIR/containerd and DIR/kubelet
// (plain ext4, so the overlayfs snapshotter works) over their /var/lib
// paths, then each "SRC DST" line of DIR/binds, binds the sysctl shadows,
// says ready and sleeps: the namespace lives as long as it does.
const holderScript = `set -eu
d=$1
hostname "$2"
shift 2
mount --rbind /sys/fs/cgroup "$d/cgroup"
if mountpoint -q "$d/cgroup/unified"; then umount "$d/cgroup/unified"; fi
umount -l /sys
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mount --rbind "$d/cgroup" /sys/fs/cgroup
umount -l "$d/cgroup"
for p in "$@"; do
	o=$d/overlay$(echo "$p" | tr / _)
	subs=
	if [ -e "$o/keep" ]; then
		subs=$(findmnt -rn -o TARGET | grep "^$p/" || true)
	fi
	if [ -n "$subs" ]; then mount --rbind "$p" "$o/orig"; fi
	mount -t overlay overlay -o "lowerdir=$p,upperdir=$o/upper,workdir=$o/work" "$p"
	for m in $subs; do mount --rbind "$o/orig${m#"$p"}" "$m"; done
	if [ -n "$subs" ]; then umount -l "$o/orig"; fi
done
for p in containerd kubelet; do
	mkdir -p "/var/lib/$p"
	mount --bind "$d/$p" "/var/lib/$p"
done
while read -r src dst; do
	mkdir -p "$dst"
	mount --bind "$src" "$dst"
done <"$d/binds"
for f in "$d"/sysctl/*; do
	mount --bind "$f" "/proc/sys/$(basename "$f" | tr . /)"
done
touch "$d/holder.ready"
exec sleep infinity
`

// startHolder makes the node's mount and UTS namespaces inside netns and
// returns the process holding them; every program of the node enters them
// with nsenter --target PID --mount --uts --net.
// Equivalent to: nsenter --net=/run/netns/NETNS unshare --mount --uts --propagation private sh -c SCRIPT
func startHolder(ctx context.Context, name, netns, dir string, binds []bind) (*proc, error) {
	for _, d := range []string{"cgroup", "containerd", "kubelet", "sysctl", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("make dir %s of node %s: %w", d, name, err)
		}
	}
	for _, p := range overlaid() {
		o := filepath.Join(dir, "overlay"+strings.ReplaceAll(p, "/", "_"))
		for _, sub := range []string{"upper", "work", "orig"} {
			if err := os.MkdirAll(filepath.Join(o, sub), 0o755); err != nil {
				return nil, fmt.Errorf("make overlay dir for %s of node %s: %w", p, name, err)
			}
		}
		if slices.Contains(keepSubmounts(), p) {
			if err := os.WriteFile(filepath.Join(o, "keep"), nil, 0o644); err != nil {
				return nil, fmt.Errorf("mark overlay of %s of node %s: %w", p, name, err)
			}
		}
	}
	var lines strings.Builder
	for _, b := range binds {
		if strings.ContainsAny(b.src+b.dst, " \t\n") {
			return nil, fmt.Errorf("bind %s over %s in node %s: a path with a blank", b.src, b.dst, name)
		}
		fmt.Fprintf(&lines, "%s %s\n", b.src, b.dst)
	}
	if err := os.WriteFile(filepath.Join(dir, "binds"), []byte(lines.String()), 0o644); err != nil {
		return nil, fmt.Errorf("write binds of node %s: %w", name, err)
	}
	for k, v := range kubeletSysctls() {
		f := filepath.Join(dir, "sysctl", strings.ReplaceAll(k, "/", "."))
		if err := os.WriteFile(f, []byte(v+"\n"), 0o644); err != nil {
			return nil, fmt.Errorf("write sysctl shadow %s of node %s: %w", k, name, err)
		}
	}
	argv := append([]string{"nsenter", "--net=/run/netns/" + netns, "unshare", "--mount", "--uts", "--propagation", "private",
		"sh", "-c", holderScript, "sh", dir, name}, overlaid()...)
	h, err := startProc("mount namespace of "+name, filepath.Join(dir, "logs", "holder.log"), argv...)
	if err != nil {
		return nil, err
	}
	err = poll(ctx, 20*time.Millisecond, func() error {
		if h.exited() {
			return errors.New("holder exited")
		}
		_, err := os.Stat(filepath.Join(dir, "holder.ready"))
		return err
	})
	if err != nil {
		return h, fmt.Errorf("set up mount namespace of %s: %w\n%s", name, err, h.logTail(20))
	}
	return h, nil
}

// enter is the prefix that runs a program in the node's netns, mount and
// UTS namespaces.
func enter(holder *proc) []string {
	return []string{"nsenter", "--target", strconv.Itoa(holder.pid()), "--mount", "--uts", "--net", "--"}
}

// sweep SIGKILLs, until none is left, every process in the holder's mount
// namespace but the holder, and every descendant of one: containerd's shims
// and the containers under them, which outlive containerd by design.
func sweep(ctx context.Context, holder *proc) error {
	mnt, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", holder.pid()))
	if err != nil {
		return fmt.Errorf("read mount namespace of %s: %w", holder.Name, err)
	}
	return poll(ctx, 50*time.Millisecond, func() error {
		victims := nodeProcs(mnt, holder.pid())
		for _, pid := range victims {
			_ = syscall.Kill(pid, syscall.SIGKILL) // ESRCH: gone already, which is the aim
		}
		if len(victims) > 0 {
			return fmt.Errorf("%d processes of %s still alive: %v", len(victims), holder.Name, victims)
		}
		return nil
	})
}

// nodeProcs lists the live (not zombie) processes in mount namespace mnt,
// but not holder, with all their descendants.
func nodeProcs(mnt string, holder int) []int {
	ents, _ := os.ReadDir("/proc") // /proc is always readable
	parent := map[int]int{}
	in := map[int]bool{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == holder {
			continue
		}
		ppid, state, ok := procStat(pid)
		if !ok || state == "Z" {
			continue
		}
		parent[pid] = ppid
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid)); err == nil && l == mnt {
			in[pid] = true
		}
	}
	for grew := true; grew; {
		grew = false
		for pid, ppid := range parent {
			if !in[pid] && in[ppid] {
				in[pid], grew = true, true
			}
		}
	}
	var out []int
	for pid := range in {
		out = append(out, pid)
	}
	return out
}

// procStat reads a process's parent and state from /proc/PID/stat, whose
// second field (the name, in parentheses) may hold spaces.
func procStat(pid int) (ppid int, state string, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", false
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, "", false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, "", false
	}
	ppid, err = strconv.Atoi(f[1])
	return ppid, f[0], err == nil
}
