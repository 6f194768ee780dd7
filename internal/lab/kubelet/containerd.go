package kubelet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// containerdSock is where the node's containerd listens, inside the node's
// own /run.
const containerdSock = "/run/containerd/containerd.sock"

// containerdConfig is the node's containerd 1.6 config: the CRI plugin with
// crun (through a wrapper, since the cgroup manager is a global crun flag)
// and no cgroups, as the process may not manage them here; the pod netns
// mounted under containerd's state dir (the node's /run) instead of the
// machine's /run/netns; the local pause image; the node's CNI dirs. The
// "opt" plugin is off because it would make /opt/containerd on the machine.
func containerdConfig(dir string) string {
	return fmt.Sprintf(`version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = %[1]q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[2]q
  disable_cgroup = true
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "crun"
    snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun.options]
        BinaryName = %[3]q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[4]q
    conf_dir = %[5]q
    max_conf_num = 1
`, containerdSock, PauseImage, filepath.Join(dir, "crun-nocgroup"), cniBinDir, cniConfDir)
}

// startContainerd writes the node's containerd config and the crun wrapper,
// starts containerd in the node's namespaces, waits for its socket, and
// imports the image archives into the CRI namespace.
func (n *Node) startContainerd(ctx context.Context, images ...string) error {
	wrapper := "#!/bin/sh\nexec crun --cgroup-manager=disabled \"$@\"\n"
	if err := os.WriteFile(filepath.Join(n.Dir, "crun-nocgroup"), []byte(wrapper), 0o755); err != nil {
		return fmt.Errorf("write crun wrapper of %s: %w", n.Name, err)
	}
	conf := filepath.Join(n.Dir, "containerd.toml")
	if err := os.WriteFile(conf, []byte(containerdConfig(n.Dir)), 0o644); err != nil {
		return fmt.Errorf("write containerd config of %s: %w", n.Name, err)
	}
	var err error
	n.containerd, err = startProc("containerd "+n.Name, filepath.Join(n.Dir, "logs", "containerd.log"),
		append(enter(n.holder), "containerd", "--config", conf)...)
	if err != nil {
		return err
	}
	ctr := append(enter(n.holder), "ctr", "--address", containerdSock, "--namespace", "k8s.io")
	err = poll(ctx, 50*time.Millisecond, func() error {
		if n.containerd.exited() {
			return fmt.Errorf("containerd exited")
		}
		_, err := run(ctx, append(ctr, "version")...)
		return err
	})
	if err != nil {
		return fmt.Errorf("wait for containerd of %s: %w\n%s", n.Name, err, n.containerd.logTail(30))
	}
	for _, image := range images {
		if _, err := run(ctx, append(ctr, "images", "import", image)...); err != nil {
			return fmt.Errorf("import image %s into containerd of %s: %w", image, n.Name, err)
		}
	}
	return nil
}
