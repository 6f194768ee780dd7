package main_test

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/nodebridge/nodebridge/internal/lab"
)

// readManifest decodes deploy/nodebridge.yaml.
func readManifest(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	path, err := lab.ManifestPath()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := lab.ReadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// manifestObject converts the manifest's object of kind into out.
func manifestObject(t *testing.T, objs []*unstructured.Unstructured, kind string, out any) {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, out); err != nil {
				t.Fatalf("convert %s: %v", kind, err)
			}
			return
		}
	}
	t.Fatalf("manifest has no %s", kind)
}

// manifestNamed converts the manifest's object of kind, namespace and name
// into out.
func manifestNamed(t *testing.T, objs []*unstructured.Unstructured, kind, ns, name string, out any) {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetNamespace() == ns && o.GetName() == name {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, out); err != nil {
				t.Fatalf("convert %s %s/%s: %v", kind, ns, name, err)
			}
			return
		}
	}
	t.Fatalf("manifest has no %s %s/%s", kind, ns, name)
}

// TestManifest checks what the issues ask of deploy/nodebridge.yaml that a
// dry run would not: RBAC grants exactly what the agent uses, and the
// DaemonSet runs on every Linux node with only the privileges it needs.
func TestManifest(t *testing.T) {
	objs := readManifest(t)
	roles := []struct {
		kind, ns, name string
		want           []rbacv1.PolicyRule
	}{
		{"ClusterRole", "", "nodebridge-agent", []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"nodes/status"}, Verbs: []string{"patch"}},
			{APIGroups: []string{""}, Resources: []string{"pods", "namespaces"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create"}},
		}},
		{"Role", "kube-system", "nodebridge-agent", []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"kubeadm-config", "nodebridge-config"}, Verbs: []string{"get"}},
		}},
	}
	for _, r := range roles {
		var got rbacv1.ClusterRole // a Role's rules decode the same way
		manifestNamed(t, objs, r.kind, r.ns, r.name, &got)
		if fmt.Sprint(got.Rules) != fmt.Sprint(r.want) {
			t.Errorf("%s %s/%s rules = %v, want %v", r.kind, r.ns, r.name, got.Rules, r.want)
		}
	}
	var ds appsv1.DaemonSet
	manifestObject(t, objs, "DaemonSet", &ds)
	checkPodSpec(t, ds.Spec.Template.Spec)
	checkLeastPrivilege(t, ds.Spec.Template.Spec)
	checkScrape(t, ds.Spec.Template)
}

// checkScrape: the prometheus.io annotations name the agent's metrics port
// and path, and the agent serves /metrics there on an address Prometheus
// can reach from off the node, not only on loopback.
func checkScrape(t *testing.T, tpl corev1.PodTemplateSpec) {
	t.Helper()
	a := tpl.Annotations
	if a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != "9720" || a["prometheus.io/path"] != "/metrics" {
		t.Errorf("pod template annotations = %v, want prometheus.io scrape true, port 9720, path /metrics", a)
	}
	c := tpl.Spec.Containers[0]
	if len(c.Ports) != 1 || c.Ports[0].Name != "metrics" || c.Ports[0].ContainerPort != 9720 {
		t.Errorf("agent ports = %+v, want one named metrics on 9720", c.Ports)
	}
	var addr string
	for _, arg := range c.Args {
		if v, ok := strings.CutPrefix(arg, "--metrics-addr="); ok {
			addr = v
		}
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port != "9720" || host == "" || net.ParseIP(host).IsLoopback() {
		t.Errorf("--metrics-addr %q: want port 9720 on a non-loopback address", addr)
	}
}

func checkPodSpec(t *testing.T, s corev1.PodSpec) {
	t.Helper()
	if !s.HostNetwork || s.PriorityClassName != "system-node-critical" || s.ServiceAccountName != "nodebridge-agent" {
		t.Errorf("pod spec: hostNetwork %v, priorityClassName %q, serviceAccountName %q", s.HostNetwork, s.PriorityClassName, s.ServiceAccountName)
	}
	if len(s.Tolerations) != 1 || s.Tolerations[0].Operator != corev1.TolerationOpExists || s.Tolerations[0].Key != "" {
		t.Errorf("tolerations = %+v, want one that tolerates every taint", s.Tolerations)
	}
	if fmt.Sprint(s.NodeSelector) != "map[kubernetes.io/os:linux]" {
		t.Errorf("nodeSelector = %v, want kubernetes.io/os: linux only", s.NodeSelector)
	}
	if len(s.InitContainers) != 1 || len(s.Containers) != 1 {
		t.Fatalf("%d init containers, %d containers; want 1 and 1", len(s.InitContainers), len(s.Containers))
	}
	a := s.Containers[0]
	if len(a.Env) != 1 || a.Env[0].Name != "NODE_NAME" || a.Env[0].ValueFrom == nil ||
		a.Env[0].ValueFrom.FieldRef == nil || a.Env[0].ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
		t.Errorf("agent env = %+v, want NODE_NAME from spec.nodeName", a.Env)
	}
	for probe, p := range map[string]*corev1.Probe{"/healthz": a.LivenessProbe, "/readyz": a.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != probe || p.HTTPGet.Port.IntValue() != 9720 {
			t.Errorf("probe of %s = %+v", probe, p)
		}
	}
}

// checkLeastPrivilege: every container drops every capability (the agent
// adds back NET_ADMIN and NET_RAW only), cannot gain privileges, runs under
// the runtime's seccomp profile on a read-only image pinned to a version;
// the pod mounts only the host paths a container uses.
func checkLeastPrivilege(t *testing.T, s corev1.PodSpec) {
	t.Helper()
	wantAdd := map[string]string{"install-cni": "[]", "agent": "[NET_ADMIN NET_RAW]"}
	mounted := map[string]bool{}
	for _, c := range append(slices.Clone(s.InitContainers), s.Containers...) {
		sc := c.SecurityContext
		if sc == nil || sc.Capabilities == nil || fmt.Sprint(sc.Capabilities.Drop) != "[ALL]" ||
			fmt.Sprint(sc.Capabilities.Add) != wantAdd[c.Name] {
			t.Errorf("%s capabilities = %+v, want drop [ALL], add %s", c.Name, sc, wantAdd[c.Name])
			continue
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("%s is privileged", c.Name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s securityContext = %+v, want allowPrivilegeEscalation false, readOnlyRootFilesystem true, seccomp RuntimeDefault", c.Name, sc)
		}
		_, tag, ok := strings.Cut(c.Image, ":")
		if !ok || tag == "latest" || !semverTag.MatchString(tag) {
			t.Errorf("%s image %q: want a pinned version tag vX.Y.Z", c.Name, c.Image)
		}
		for _, m := range c.VolumeMounts {
			mounted[m.Name] = true
		}
	}
	var volumes []string
	for _, v := range s.Volumes {
		volumes = append(volumes, v.Name+"="+v.HostPath.Path)
		if !mounted[v.Name] {
			t.Errorf("volume %s is mounted by no container", v.Name)
		}
	}
	if want := "[cni-bin=/opt/cni/bin cni-conf=/etc/cni/net.d xtables-lock=/run/xtables.lock]"; fmt.Sprint(volumes) != want {
		t.Errorf("volumes = %v, want %s", volumes, want)
	}
}

// semverTag is an image tag naming a release.
var semverTag = regexp.MustCompile(`^v\d+\.\d+\.\d+$`)

// testManifestDryRun: every object of the manifest passes a server-side
// dry run (validation, defaulting, admission) on the real API server, and
// the dry run stored nothing.
func testManifestDryRun(t *testing.T, c *cluster) {
	ctx := context.Background()
	if err := c.lab.Apply(ctx, readManifest(t), true); err != nil {
		t.Fatalf("server-side dry run of deploy/nodebridge.yaml: %v", err)
	}
	_, err := c.cs.AppsV1().DaemonSets("kube-system").Get(ctx, "nodebridge-agent", metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("DaemonSet after a dry run: %v, want NotFound", err)
	}
}

// testAgentRBAC: the agents' identity, bound by the manifest, may do what
// the agent does and no more: read Nodes, patch Node status, record
// Events (on Nodes in default, on NetworkPolicies in theirs), list and
// watch Pods, Namespaces and NetworkPolicies, and read kubeadm's ConfigMap
// and nodebridge-config, but not write Nodes nor read anything else.
func testAgentRBAC(t *testing.T, c *cluster) {
	ctx := context.Background()
	as, err := kubernetes.NewForConfig(c.lab.AgentConfig())
	if err != nil {
		t.Fatal(err)
	}
	name := c.nodes[0].Name
	dry := metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}}
	patch := []byte(`{"metadata":{"labels":{"nodebridge.lab/probe":"x"}}}`)
	if _, err := as.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{}); err != nil {
		t.Errorf("agent identity cannot get node %s: %v", name, err)
	}
	if _, err := as.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, patch, dry, "status"); err != nil {
		t.Errorf("agent identity cannot patch nodes/status: %v", err)
	}
	for _, cm := range []string{"kubeadm-config", "nodebridge-config"} {
		if _, err := as.CoreV1().ConfigMaps("kube-system").Get(ctx, cm, metav1.GetOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("agent identity cannot get configmap kube-system/%s: %v", cm, err)
		}
	}
	if _, err := as.CoreV1().Pods("").List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		t.Errorf("agent identity cannot list pods: %v", err)
	}
	if _, err := as.CoreV1().Namespaces().List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		t.Errorf("agent identity cannot list namespaces: %v", err)
	}
	if _, err := as.NetworkingV1().NetworkPolicies("").List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		t.Errorf("agent identity cannot list networkpolicies: %v", err)
	}
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{GenerateName: "rbac-probe-"},
		InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: name, APIVersion: "v1"},
		Reason:         "Probe", Message: "probe", Type: corev1.EventTypeNormal}
	create := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	if _, err := as.CoreV1().Events("default").Create(ctx, ev, create); err != nil {
		t.Errorf("agent identity cannot create Node events in default: %v", err)
	}
	polEv := ev.DeepCopy()
	polEv.InvolvedObject = corev1.ObjectReference{Kind: "NetworkPolicy", Namespace: "kube-system", Name: "any", APIVersion: "networking.k8s.io/v1"}
	if _, err := as.CoreV1().Events("kube-system").Create(ctx, polEv, create); err != nil {
		t.Errorf("agent identity cannot create NetworkPolicy events in kube-system: %v", err)
	}
	denied := map[string]error{}
	_, denied["patch nodes"] = as.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, patch, dry)
	denied["delete nodes"] = as.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
	_, denied["list secrets"] = as.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{})
	_, denied["get pod"] = as.CoreV1().Pods("default").Get(ctx, "any", metav1.GetOptions{})
	denied["delete pods"] = as.CoreV1().Pods("default").DeleteCollection(ctx, metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}, metav1.ListOptions{})
	_, denied["create networkpolicies"] = as.NetworkingV1().NetworkPolicies("default").Create(ctx, &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "rbac-probe"}}, create)
	_, denied["list configmaps"] = as.CoreV1().ConfigMaps("kube-system").List(ctx, metav1.ListOptions{})
	_, denied["get configmap kube-proxy"] = as.CoreV1().ConfigMaps("kube-system").Get(ctx, "kube-proxy", metav1.GetOptions{})
	_, denied["list events"] = as.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
	denied["delete events"] = as.CoreV1().Events("default").Delete(ctx, "any", metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
	for what, err := range denied {
		if !apierrors.IsForbidden(err) {
			t.Errorf("agent identity: %s: %v, want Forbidden", what, err)
		}
	}
}

// The init container's script, run by sh with the image's and the node's
// directories under a temp dir: it installs nodebridge, and portmap and
// loopback only where the node has none; a second run updates ours and
// leaves the node's; run for the uninstall, it leaves only the node's.
func TestManifestInitInstalls(t *testing.T) {
	var ds appsv1.DaemonSet
	manifestObject(t, readManifest(t), "DaemonSet", &ds)
	if len(ds.Spec.Template.Spec.InitContainers) != 1 {
		t.Fatalf("%d init containers, want 1", len(ds.Spec.Template.Spec.InitContainers))
	}
	cmd := ds.Spec.Template.Spec.InitContainers[0].Command
	if len(cmd) != 3 || cmd[0] != "/bin/sh" || cmd[1] != "-c" {
		t.Fatalf("init command %q, want /bin/sh -c SCRIPT", cmd)
	}
	bins := []string{"nodebridge", "portmap", "loopback"}
	for _, nodeHas := range [][]string{nil, {"loopback"}, {"portmap", "loopback"}} {
		root := t.TempDir()
		src, dst := filepath.Join(root, "image"), filepath.Join(root, "node")
		for _, d := range []string{src, dst} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for _, b := range nodeHas {
			if err := os.WriteFile(filepath.Join(dst, b), []byte("node's "+b), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		script := strings.NewReplacer("/opt/nodebridge/bin", src, "/host/opt/cni/bin", dst).Replace(cmd[2])
		run := func(env ...string) {
			t.Helper()
			c := exec.Command("sh", "-c", script)
			c.Env = append(os.Environ(), env...)
			if out, err := c.CombinedOutput(); err != nil {
				t.Fatalf("init script %v: %v\n%s", env, err, out)
			}
		}
		want := map[string]string{}
		for _, version := range []string{"v1", "v2"} {
			for _, b := range bins {
				if err := os.WriteFile(filepath.Join(src, b), []byte("image's "+version+" "+b), 0o755); err != nil {
					t.Fatal(err)
				}
				if !slices.Contains(nodeHas, b) {
					want[b] = "image's " + version + " " + b
				}
			}
			run()
		}
		var ours []string
		for _, b := range bins {
			if slices.Contains(nodeHas, b) {
				want[b] = "node's " + b
			} else {
				ours = append(ours, b)
			}
		}
		want[".nodebridge-installed"] = strings.Join(ours, "\n") + "\n"
		checkDir(t, dst, want)
		run("NODEBRIDGE_UNINSTALL=1")
		for _, b := range append(ours, ".nodebridge-installed") {
			delete(want, b)
		}
		checkDir(t, dst, want)
	}
}

// checkDir fails t unless dir holds exactly the files of want, each with
// its content.
func checkDir(t *testing.T, dir string, want map[string]string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	if len(entries) != len(want) {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("%s holds %q, want the %d of %v (no temp file left)", dir, names, len(want), slices.Sorted(maps.Keys(want)))
	}
	for b, content := range want {
		if got, err := os.ReadFile(filepath.Join(dir, b)); err != nil || string(got) != content {
			t.Errorf("%s = %q %v, want %q", b, got, err, content)
		}
	}
}
