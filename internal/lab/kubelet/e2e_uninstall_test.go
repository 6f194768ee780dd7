package kubelet

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// uninstallLeavesNodesAsBefore deletes the pods on the pod network, as the
// README says to first, runs the one uninstall command
// (scripts/uninstall-cluster.sh), and checks every node still in the
// cluster is as before the install: no route of protocol 78, no rule or
// table of nodebridge's in either backend, no conflist, no bridge or pod
// veth, nothing in /opt/cni/bin or /var/lib/cni/networks; and no object of
// the manifest left.
// portmap's own chains stay, as portmap leaves them on any node.
func (e *e2e) uninstallLeavesNodesAsBefore(t *testing.T, ctx context.Context) {
	pods, err := e.c.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			deletePodAndWait(t, ctx, e.c, p.Name)
		}
	}
	nodes := e.c.Nodes[:2] // the third left the cluster in NodeDeletedRoutesGo
	for _, n := range nodes {
		waitNoVeth(t, ctx, n)
	}
	t0 := time.Now()
	out, err := e.c.Uninstall(ctx)
	if err != nil {
		t.Fatalf("uninstall: %v\n%s", err, out)
	}
	t.Logf("scripts/uninstall-cluster.sh: %v\n%s", time.Since(t0).Round(time.Millisecond), out)
	for _, n := range nodes {
		for _, argv := range [][]string{{"ip", "-4", "route", "show", "proto", "78"}, {"ip", "-6", "route", "show", "proto", "78"},
			{"ip", "-o", "link", "show", "type", "bridge"}, {"ip", "-o", "link", "show", "type", "vxlan"}} {
			if got, err := n.Exec(ctx, argv...); err != nil || strings.TrimSpace(got) != "" {
				t.Errorf("%s after uninstall: %s: %q %v, want nothing", n.Name, strings.Join(argv, " "), got, err)
			}
		}
		if v, err := n.Veths(ctx); err != nil || len(v) != 0 {
			t.Errorf("%s after uninstall: pod veths %v (%v)", n.Name, v, err)
		}
		rules, err := n.Rules(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range rules {
			if strings.Contains(l, "NB-") || strings.Contains(strings.ToLower(l), "nodebridge") {
				t.Errorf("%s after uninstall: rule %q left", n.Name, l)
			}
		}
		for _, dir := range []string{n.ConfDir, n.cniBinDir, n.DataDir} {
			if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
				t.Errorf("%s after uninstall: %s holds %v (%v), want nothing", n.Name, dir, names(ents), err)
			}
		}
	}
	ds := e.c.Client.AppsV1().DaemonSets("kube-system")
	if _, err := ds.Get(ctx, "nodebridge-agent", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("DaemonSet after uninstall: %v, want NotFound", err)
	}
	if _, err := e.c.Client.RbacV1().ClusterRoles().Get(ctx, "nodebridge-agent", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("ClusterRole after uninstall: %v, want NotFound", err)
	}
}

// waitNoVeth polls until the node has no pod veth: its pods' DELs are done.
func waitNoVeth(t *testing.T, ctx context.Context, n *Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	err := poll(ctx, 200*time.Millisecond, func() error {
		v, err := n.Veths(ctx)
		if err == nil && len(v) > 0 {
			err = fmt.Errorf("veths %v", v)
		}
		return err
	})
	if err != nil {
		t.Fatalf("wait for the pods of %s to go: %v", n.Name, err)
	}
}

// names lists the entries' names.
func names(ents []os.DirEntry) []string {
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}
