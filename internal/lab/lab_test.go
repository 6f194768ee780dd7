package lab

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// netnsPrefix is testenv's per-process prefix ("nb<pid in hex>-"), so the
// guard counts the lab's netns as this process's own.
func netnsPrefix() string { return testenv.NetnsPrefix() }

func TestPKIServingCertVerifies(t *testing.T) {
	dir := t.TempDir()
	p, err := newPKI(dir, net.IP(UnderlayV4.AsSlice()), net.IP(UnderlayV6.AsSlice()))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(p.CAPEM) {
		t.Fatal("CA PEM does not parse")
	}
	b, err := os.ReadFile(p.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"198.18.0.1", "fd00:198:18::1", "kubernetes.default.svc"} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: host}); err != nil {
			t.Errorf("serving cert for %s: %v", host, err)
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "198.18.0.2"}); err == nil {
		t.Error("serving cert verified for 198.18.0.2, which is not among its SANs")
	}
	for _, f := range []string{p.KeyFile, p.SAKeyFile, p.SAPubFile} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v; want a 0600 file", f, err, fi)
		}
	}
}

func TestNodeSpecObject(t *testing.T) {
	s := NodeSpec{
		Name:        "n1",
		PodCIDRs:    []netip.Prefix{netip.MustParsePrefix("10.244.1.0/24"), netip.MustParsePrefix("fd00:10:244:1::/64")},
		InternalIPs: []netip.Addr{NodeIPv4(1), NodeIPv6(1)},
	}
	n := s.Object()
	if n.Spec.PodCIDR != "10.244.1.0/24" || len(n.Spec.PodCIDRs) != 2 || n.Spec.PodCIDRs[1] != "fd00:10:244:1::/64" {
		t.Errorf("spec = %+v, want podCIDR 10.244.1.0/24 and both podCIDRs", n.Spec)
	}
	var ips []string
	for _, a := range n.Status.Addresses {
		if a.Type == "InternalIP" {
			ips = append(ips, a.Address)
		}
	}
	if len(ips) != 2 || ips[0] != "198.18.0.11" || ips[1] != "fd00:198:18::11" {
		t.Errorf("InternalIPs = %v, want [198.18.0.11 fd00:198:18::11]", ips)
	}
	if n := (NodeSpec{Name: "late"}).Object(); n.Spec.PodCIDR != "" || n.Spec.PodCIDRs != nil {
		t.Errorf("node without podCIDRs has spec %+v", n.Spec)
	}
}

func TestTail(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc"},
		{"a\nb", 5, "a\nb"},
		{"", 3, ""},
	}
	for _, tt := range tests {
		if got := tail(tt.in, tt.n); got != tt.want {
			t.Errorf("tail(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

// startTestLab starts a lab with one node for t, both removed when t ends.
func startTestLab(t *testing.T, ctx context.Context) (*Lab, *Node) {
	t.Helper()
	testenv.RequireRoot(t)
	bin, err := Binaries(ctx)
	if err != nil {
		t.Fatalf("build kube-apiserver and etcd: %v", err)
	}
	l, err := Start(ctx, Options{Prefix: netnsPrefix(), Dir: t.TempDir(), K8sBin: bin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(l.ControlPlaneLogs())
		}
		if err := l.Close(); err != nil {
			t.Errorf("close lab: %v", err)
		}
	})
	n, err := l.AddNode(ctx, "n1", 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("close node: %v", err)
		}
	})
	return l, n
}

// TestControlPlaneSurvivesRestart starts the lab, reaches the underlay host
// and the API server from a node netns, and finds a Node again after a
// kill and restart of etcd and the API server on their data.
func TestControlPlaneSurvivesRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l, n := startTestLab(t, ctx)
	if out, err := n.Exec(ctx, "ping", "-c1", "-W2", UnderlayV4.String()); err != nil {
		t.Fatalf("node cannot reach the underlay host: %v\n%s", err, out)
	}
	c, err := Dialer(n.Netns)(ctx, "tcp", net.JoinHostPort(UnderlayV4.String(), "6443"))
	if err != nil {
		t.Fatalf("node cannot reach the API server: %v", err)
	}
	c.Close()

	cs, err := l.AdminClient()
	if err != nil {
		t.Fatal(err)
	}
	spec := NodeSpec{Name: "n1", PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.1.0/24")}, InternalIPs: []netip.Addr{NodeIPv4(1)}}
	if err := CreateNode(ctx, cs, spec); err != nil {
		t.Fatal(err)
	}
	l.KillControlPlane()
	if _, err := cs.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{}); err == nil {
		t.Fatal("GET succeeded with the control plane killed")
	}
	if err := l.StartControlPlane(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := cs.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get node after restart: %v", err)
	}
	if len(got.Status.Addresses) == 0 || got.Status.Addresses[0].Address != "198.18.0.11" || got.Spec.PodCIDR != "10.244.1.0/24" {
		t.Errorf("node after restart: spec %+v, addresses %+v", got.Spec, got.Status.Addresses)
	}
	if _, err := os.Stat(filepath.Join(l.Dir, "control-plane", "etcd")); err != nil {
		t.Errorf("etcd data dir: %v", err)
	}
}

func TestReadManifest(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	objs, err := ReadManifest(write("ok.yaml", "---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: a\n---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n"))
	if err != nil || len(objs) != 2 || objs[0].GetKind() != "ServiceAccount" || objs[1].GetName() != "b" {
		t.Errorf("ReadManifest = %v, %v; want a ServiceAccount and ConfigMap b", objs, err)
	}
	if _, err := ReadManifest(write("noname.yaml", "apiVersion: v1\nkind: ConfigMap\n")); err == nil {
		t.Error("ReadManifest accepted an object without a name")
	}
	if _, err := ReadManifest(write("bad.yaml", "kind: [\n")); err == nil {
		t.Error("ReadManifest accepted broken YAML")
	}
	path, err := ManifestPath()
	if err != nil {
		t.Fatal(err)
	}
	if objs, err := ReadManifest(path); err != nil || len(objs) != 7 {
		t.Errorf("deploy/nodebridge.yaml: %d objects, %v; want 7 (ServiceAccount, ClusterRole and binding, Role and binding, the conflist ConfigMap, DaemonSet)", len(objs), err)
	}
}
