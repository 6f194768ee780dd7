package main_test

import (
	"context"
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
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

// TestManifest checks what the issue asks of deploy/nodebridge.yaml that a
// dry run would not: the ClusterRole grants exactly what the agent uses,
// and the DaemonSet runs on every node with only the capabilities it needs.
func TestManifest(t *testing.T) {
	objs := readManifest(t)
	var role rbacv1.ClusterRole
	manifestObject(t, objs, "ClusterRole", &role)
	got := fmt.Sprint(role.Rules)
	want := fmt.Sprint([]rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"nodes/status"}, Verbs: []string{"patch"}},
	})
	if got != want {
		t.Errorf("ClusterRole rules = %s, want %s", got, want)
	}
	var ds appsv1.DaemonSet
	manifestObject(t, objs, "DaemonSet", &ds)
	checkPodSpec(t, ds.Spec.Template.Spec)
}

func checkPodSpec(t *testing.T, s corev1.PodSpec) {
	t.Helper()
	if !s.HostNetwork || s.PriorityClassName != "system-node-critical" || s.ServiceAccountName != "nodebridge-agent" {
		t.Errorf("pod spec: hostNetwork %v, priorityClassName %q, serviceAccountName %q", s.HostNetwork, s.PriorityClassName, s.ServiceAccountName)
	}
	if len(s.Tolerations) != 1 || s.Tolerations[0].Operator != corev1.TolerationOpExists || s.Tolerations[0].Key != "" {
		t.Errorf("tolerations = %+v, want one that tolerates every taint", s.Tolerations)
	}
	if len(s.InitContainers) != 1 || len(s.Containers) != 1 {
		t.Fatalf("%d init containers, %d containers; want 1 and 1", len(s.InitContainers), len(s.Containers))
	}
	a := s.Containers[0]
	sc := a.SecurityContext
	if sc == nil || sc.Privileged == nil || *sc.Privileged || sc.Capabilities == nil ||
		fmt.Sprint(sc.Capabilities.Add) != "[NET_ADMIN NET_RAW]" {
		t.Errorf("agent securityContext = %+v, want NET_ADMIN and NET_RAW, not privileged", sc)
	}
	if len(a.Env) != 1 || a.Env[0].Name != "NODE_NAME" || a.Env[0].ValueFrom == nil ||
		a.Env[0].ValueFrom.FieldRef == nil || a.Env[0].ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
		t.Errorf("agent env = %+v, want NODE_NAME from spec.nodeName", a.Env)
	}
	for probe, p := range map[string]*corev1.Probe{"/healthz": a.LivenessProbe, "/readyz": a.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != probe || p.HTTPGet.Port.IntValue() != 9720 {
			t.Errorf("probe of %s = %+v", probe, p)
		}
	}
	mounts := map[string]bool{}
	for _, m := range a.VolumeMounts {
		mounts[m.MountPath] = true
	}
	for _, p := range []string{"/etc/cni/net.d", "/var/lib/cni", "/run/xtables.lock", "/lib/modules"} {
		if !mounts[p] {
			t.Errorf("agent does not mount %s", p)
		}
	}
}

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
// the agent does and no more: read Nodes and patch Node status, but not
// write Nodes nor read anything else.
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
	denied := map[string]error{}
	_, denied["patch nodes"] = as.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, patch, dry)
	denied["delete nodes"] = as.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
	_, denied["list secrets"] = as.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{})
	_, denied["list pods"] = as.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	for what, err := range denied {
		if !apierrors.IsForbidden(err) {
			t.Errorf("agent identity: %s: %v, want Forbidden", what, err)
		}
	}
}
