package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

// listOne asks a list for one item: enough to know the call is allowed.
var listOne = metav1.ListOptions{Limit: 1}

// fieldManager names the lab in the objects' managedFields.
const fieldManager = "nodebridge-lab"

// ManifestPath is deploy/nodebridge.yaml in the module this runs from.
func ManifestPath() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "deploy", "nodebridge.yaml"), nil
}

// ReadManifest decodes every object of a multi-document YAML file.
func ReadManifest(path string) ([]*unstructured.Unstructured, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	var objs []*unstructured.Unstructured
	for i := 0; ; i++ {
		var m map[string]any
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return objs, nil
		} else if err != nil {
			return nil, fmt.Errorf("decode %s document %d: %w", path, i, err)
		}
		if len(m) == 0 {
			continue // an empty document, e.g. after a trailing "---"
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetKind() == "" || u.GetName() == "" {
			return nil, fmt.Errorf("%s document %d: no kind or metadata.name", path, i)
		}
		objs = append(objs, u)
	}
}

// Apply server-side-applies objs as the admin. With dryRun the API server
// runs admission and validation and stores nothing.
func (l *Lab) Apply(ctx context.Context, objs []*unstructured.Unstructured, dryRun bool) error {
	cfg := l.AdminConfig()
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return fmt.Errorf("make discovery client: %w", err)
	}
	groups, err := restmapper.GetAPIGroupResources(dc)
	if err != nil {
		return fmt.Errorf("discover API resources: %w", err)
	}
	mapper := restmapper.NewDiscoveryRESTMapper(groups)
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("make dynamic client: %w", err)
	}
	opts := metav1.PatchOptions{FieldManager: fieldManager}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	var errs []error
	for _, o := range objs {
		errs = append(errs, applyOne(ctx, dyn, mapper, o, opts))
	}
	return errors.Join(errs...)
}

func applyOne(ctx context.Context, dyn dynamic.Interface, mapper meta.RESTMapper, o *unstructured.Unstructured, opts metav1.PatchOptions) error {
	gvk := o.GroupVersionKind()
	m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return fmt.Errorf("map %s %s to a resource: %w", gvk, o.GetName(), err)
	}
	body, err := o.MarshalJSON()
	if err != nil {
		return fmt.Errorf("encode %s %s: %w", gvk.Kind, o.GetName(), err)
	}
	var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		ri = dyn.Resource(m.Resource).Namespace(o.GetNamespace())
	}
	if _, err := ri.Patch(ctx, o.GetName(), types.ApplyPatchType, body, opts); err != nil {
		return fmt.Errorf("apply %s %s/%s (dryRun %v): %w", gvk.Kind, o.GetNamespace(), o.GetName(), opts.DryRun, err)
	}
	return nil
}

// ApplyManifestRBAC applies the RBAC objects of deploy/nodebridge.yaml (see
// ApplyRBAC), so agents run with exactly the permissions the manifest gives.
func (l *Lab) ApplyManifestRBAC(ctx context.Context) error {
	path, err := ManifestPath()
	if err != nil {
		return err
	}
	objs, err := ReadManifest(path)
	if err != nil {
		return err
	}
	return l.ApplyRBAC(ctx, objs)
}

// ApplyRBAC applies the manifest's ServiceAccount, ClusterRole and binding
// for real, and waits until the agent identity may list Nodes.
func (l *Lab) ApplyRBAC(ctx context.Context, objs []*unstructured.Unstructured) error {
	var rbac []*unstructured.Unstructured
	for _, o := range objs {
		switch o.GetKind() {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
			rbac = append(rbac, o)
		}
	}
	if len(rbac) == 0 {
		return fmt.Errorf("manifest holds no RBAC objects")
	}
	if err := l.Apply(ctx, rbac, false); err != nil {
		return err
	}
	return l.waitAgentAllowed(ctx)
}
