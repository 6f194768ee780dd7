package kubelet

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodebridge/nodebridge/internal/lab"
)

// ShippedImage is the image deploy/nodebridge.yaml names, which an
// operator replaces with the one make image printed.
const ShippedImage = "ghcr.io/nodebridge/nodebridge:v0.1.0"

// Image is nodebridge's image as make image builds it.
type Image struct {
	Name    string // what make image printed, e.g. ghcr.io/nodebridge/nodebridge:v0.3.0-12-gabcdef0
	Archive string // the OCI archive it wrote, for ctr images import
}

// BuildNodebridgeImage runs make image's script (scripts/build-image.sh) with the
// version given into dir and returns what it printed.
func BuildNodebridgeImage(ctx context.Context, dir, version string) (Image, error) {
	root, err := lab.RepoRoot()
	if err != nil {
		return Image{}, err
	}
	cmd := exec.CommandContext(ctx, "bash", "scripts/build-image.sh")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "VERSION="+version, "IMAGE_OUT_DIR="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return Image{}, fmt.Errorf("make image (scripts/build-image.sh) version %s: %w\n%s", version, err, out)
	}
	var im Image
	for l := range strings.SplitSeq(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "image "); ok {
			im.Name = v
		}
		if v, ok := strings.CutPrefix(l, "archive "); ok {
			im.Archive, _, _ = strings.Cut(v, " (")
		}
	}
	if im.Name == "" || im.Archive == "" {
		return Image{}, fmt.Errorf("make image printed no image or archive line:\n%s", out)
	}
	return im, nil
}

// ImageVersion is the version a test image is tagged with: the tree's, as
// make image tags it, with suffix.
func ImageVersion(ctx context.Context, suffix string) (string, error) {
	root, err := lab.RepoRoot()
	if err != nil {
		return "", err
	}
	return lab.Version(ctx, root) + suffix, nil
}

// serviceStandIn does in the node's netns what kube-proxy would for the
// one Service a hostNetwork pod needs before any kube-proxy runs: a
// connection to the kubernetes Service's ClusterIP, where in-cluster config
// sends the agent, goes to the API server. The node reaches it by its
// default route. Equivalent to, in the node netns:
//
//	nft add table ip lab-kubernetes-service
//	nft add chain ip lab-kubernetes-service output '{ type nat hook output priority -100; }'
//	nft add rule ip lab-kubernetes-service output ip daddr 10.96.0.1 tcp dport 443 dnat to 198.18.0.1:6443
func (n *Node) serviceStandIn(ctx context.Context) error {
	ruleset := fmt.Sprintf("table ip lab-kubernetes-service {\n\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n"+
		"\t\tip daddr %s tcp dport 443 dnat to %s\n\t}\n}\n", lab.KubernetesServiceIP, lab.APIServerAddr())
	f := filepath.Join(n.Dir, "kubernetes-service.nft")
	if err := os.WriteFile(f, []byte(ruleset), 0o644); err != nil {
		return fmt.Errorf("write kubernetes Service stand-in of %s: %w", n.Name, err)
	}
	if _, err := n.Node.Exec(ctx, "nft", "-f", f); err != nil {
		return fmt.Errorf("kubernetes Service stand-in in %s: %w", n.Name, err)
	}
	return nil
}

// kubeadmPodSubnet is the kube-system/kubeadm-config ConfigMap a kubeadm
// cluster holds, reduced to what the agent reads from it: the cluster CIDR
// as networking.podSubnet. With it the shipped manifest needs no
// --cluster-cidr, as on a kubeadm cluster.
func kubeadmPodSubnet(podSubnet string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "kubeadm-config", Namespace: "kube-system"},
		Data: map[string]string{"ClusterConfiguration": "apiVersion: kubeadm.k8s.io/v1beta4\n" +
			"kind: ClusterConfiguration\nnetworking:\n  podSubnet: " + podSubnet + "\n"},
	}
}

// installDaemonSet installs nodebridge as the README tells an operator on
// a kubeadm-style cluster (the image is in every node's containerd):
// kubectl apply of deploy/nodebridge.yaml with the image make image
// printed, then kubectl rollout status.
func (c *Cluster) installDaemonSet(ctx context.Context) error {
	_, err := c.Client.CoreV1().ConfigMaps("kube-system").Create(ctx, kubeadmPodSubnet(c.ClusterCIDR.String()), metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create kube-system/kubeadm-config: %w", err)
	}
	return c.ApplyDaemonSet(ctx, c.DaemonSet)
}

// ApplyDaemonSet runs kubectl apply -f deploy/nodebridge.yaml with image in
// place of ShippedImage, as the README's sed does, and waits for the
// rollout: a new image rolls the agent out one node at a time.
func (c *Cluster) ApplyDaemonSet(ctx context.Context, image string) error {
	path, err := lab.ManifestPath()
	if err != nil {
		return err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read manifest: %w", err)
	}
	if n := strings.Count(string(b), ShippedImage); n != 2 {
		return fmt.Errorf("%s names %s %d times, want 2 (init container and agent)", path, ShippedImage, n)
	}
	out := filepath.Join(c.Dir, "nodebridge-"+strings.NewReplacer("/", "_", ":", "_").Replace(image)+".yaml")
	if err := os.WriteFile(out, []byte(strings.ReplaceAll(string(b), ShippedImage, image)), 0o644); err != nil {
		return fmt.Errorf("write manifest for %s: %w", image, err)
	}
	if o, err := c.Kubectl(ctx, "apply", "-f", out); err != nil {
		return fmt.Errorf("kubectl apply -f %s: %w\n%s", out, err, o)
	}
	return c.waitRollout(ctx)
}

// waitRollout is kubectl rollout status of the agent's DaemonSet, then a
// poll until its status counts an agent pod of the current template
// available on every node: just after a create, rollout status may find a
// DaemonSet that wants no pod yet and call it rolled out.
func (c *Cluster) waitRollout(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	o, err := c.Kubectl(ctx, "-n", "kube-system", "rollout", "status", "daemonset/nodebridge-agent")
	if err == nil {
		err = poll(ctx, 200*time.Millisecond, func() error {
			ds, err := c.Client.AppsV1().DaemonSets("kube-system").Get(ctx, "nodebridge-agent", metav1.GetOptions{})
			if err != nil {
				return err
			}
			st, want := ds.Status, int32(len(c.Nodes))
			if st.ObservedGeneration < ds.Generation || st.DesiredNumberScheduled != want ||
				st.UpdatedNumberScheduled != want || st.NumberAvailable != want {
				return fmt.Errorf("daemonset nodebridge-agent: generation %d observed %d, desired %d, updated %d, available %d; want %d",
					ds.Generation, st.ObservedGeneration, st.DesiredNumberScheduled, st.UpdatedNumberScheduled, st.NumberAvailable, want)
			}
			return nil
		})
	}
	if err != nil {
		pods, _ := c.Kubectl(ctx, "-n", "kube-system", "describe", "pods") // for the message only
		return fmt.Errorf("kubectl rollout status daemonset/nodebridge-agent: %w\n%s\n%s", err, o, pods)
	}
	return nil
}

// Uninstall runs the one command the README gives to remove nodebridge,
// scripts/uninstall-cluster.sh, with kubectl and the admin's kubeconfig,
// from the lab netns, and returns its output.
func (c *Cluster) Uninstall(ctx context.Context) (string, error) {
	root, err := lab.RepoRoot()
	if err != nil {
		return "", err
	}
	kc, err := c.Lab.AdminKubeconfig()
	if err != nil {
		return "", err
	}
	return run(ctx, "ip", "netns", "exec", c.Lab.Netns, "env", "PATH="+c.K8sBin+":"+os.Getenv("PATH"), "KUBECONFIG="+kc,
		"sh", filepath.Join(root, "scripts", "uninstall-cluster.sh"))
}
