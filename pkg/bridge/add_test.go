package bridge

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/nodebridge/nodebridge/internal/testenv"
	"github.com/nodebridge/nodebridge/pkg/rules"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// testNet is one node netns with a network config whose rules go to a Fake.
type testNet struct {
	node, dataDir string
	rules         *rules.Fake
	c             *Config
	host          *Host
}

func newTestNet(t *testing.T, extra string) *testNet {
	t.Helper()
	tn := &testNet{node: testenv.NewNode(t), dataDir: t.TempDir(), rules: &rules.Fake{}}
	conf := fmt.Sprintf(`{"cniVersion":"1.1.0","name":"unit","type":"nodebridge","bridge":"nbt0",
		"isGateway":true,"ipMasq":true%s,
		"ipam":{"type":"host-local","subnet":"10.1.0.0/24","dataDir":%q}}`, extra, tn.dataDir)
	c, err := Parse([]byte(conf), Pod{})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	tn.c, tn.host = c, &Host{Rules: tn.rules}
	return tn
}

// pod makes a pod netns and the Pod a runtime would pass for it.
func (tn *testNet) pod(t *testing.T, id string) Pod {
	t.Helper()
	name := testenv.NewNS(t, "pod")
	return Pod{ContainerID: id, Netns: testenv.Path(name), IfName: "eth0"}
}

// inNode runs f with the node netns as the host netns, as the plugin runs.
func (tn *testNet) inNode(f func() error) error {
	return ns.WithNetNSPath(testenv.Path(tn.node), func(ns.NetNS) error { return f() })
}

func (tn *testNet) add(p Pod) error {
	return tn.inNode(func() error { _, err := Add(context.Background(), tn.c, tn.host, p); return err })
}

func (tn *testNet) del(p Pod) error {
	return tn.inNode(func() error { return Del(context.Background(), tn.c, tn.host, p) })
}

// allocations lists the address files of the network's store.
func (tn *testNet) allocations(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(tn.dataDir, "unit"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var ips []string
	for _, e := range entries {
		if strings.ContainsAny(e.Name(), ".:") && !strings.HasPrefix(e.Name(), "last_reserved_ip") && !strings.HasPrefix(e.Name(), ".") {
			ips = append(ips, e.Name())
		}
	}
	return ips
}

// assertNothingLeft checks a failed or deleted attachment left no veth in
// the node, no allocation and no rules.
func (tn *testNet) assertNothingLeft(t *testing.T) {
	t.Helper()
	if out := testenv.Run(t, tn.node, "ip", "-o", "link", "show", "type", "veth"); out != "" {
		t.Errorf("veth left in the node:\n%s", out)
	}
	if ips := tn.allocations(t); len(ips) != 0 {
		t.Errorf("allocations left: %v", ips)
	}
	if tn.rules.Ensured("unit") {
		t.Error("rules of network unit left in place")
	}
}

func TestAddUndoesWhenRulesFail(t *testing.T) {
	tn := newTestNet(t, "")
	p := tn.pod(t, "rules-fail")
	boom := errors.New("boom")
	tn.rules.SetErr(rules.OpEnsure, boom)
	if err := tn.add(p); !errors.Is(err, boom) {
		t.Fatalf("Add error = %v, want it to wrap %v", err, boom)
	}
	tn.assertNothingLeft(t)
	if out := testenv.Run(t, filepath.Base(p.Netns), "ip", "-o", "link", "show"); strings.Contains(out, "eth0") {
		t.Errorf("pod kept eth0 after a failed ADD:\n%s", out)
	}
}

func TestAddUndoesWhenGatewayConflicts(t *testing.T) {
	tn := newTestNet(t, "")
	testenv.Run(t, tn.node, "ip", "link", "add", "nbt0", "type", "bridge")
	testenv.Run(t, tn.node, "ip", "addr", "add", "10.99.0.1/24", "dev", "nbt0")
	err := tn.add(tn.pod(t, "gw-conflict"))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "forceAddress") {
		t.Fatalf("Add error = %v, want ErrInvalid naming forceAddress", err)
	}
	tn.assertNothingLeft(t)
	if tn.rules.Calls(rules.OpDelete) == 0 {
		t.Error("the undo did not remove the rules the failed ADD installed")
	}
}

func TestAddForceAddressReplacesGateway(t *testing.T) {
	tn := newTestNet(t, `,"forceAddress":true`)
	testenv.Run(t, tn.node, "ip", "link", "add", "nbt0", "type", "bridge")
	testenv.Run(t, tn.node, "ip", "addr", "add", "10.99.0.1/24", "dev", "nbt0")
	if err := tn.add(tn.pod(t, "force")); err != nil {
		t.Fatalf("Add: %v", err)
	}
	out := testenv.Run(t, tn.node, "ip", "-o", "-4", "addr", "show", "dev", "nbt0")
	if !strings.Contains(out, "10.1.0.1/24") || strings.Contains(out, "10.99.0.1") {
		t.Errorf("bridge addresses after forceAddress:\n%s", out)
	}
}

func TestAddInterfaceNameTaken(t *testing.T) {
	tn := newTestNet(t, "")
	p := tn.pod(t, "taken")
	testenv.Run(t, filepath.Base(p.Netns), "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "other0")
	err := tn.add(p)
	if err == nil || !strings.Contains(err.Error(), "eth0 already exists") {
		t.Fatalf("Add error = %v, want one saying eth0 already exists", err)
	}
	tn.assertNothingLeft(t)
	if out := testenv.Run(t, filepath.Base(p.Netns), "ip", "-o", "link", "show", "eth0"); !strings.Contains(out, "eth0@other0") {
		t.Errorf("the pod's own eth0 was touched:\n%s", out)
	}
}

func TestBridgeMACStaysAsPortsChange(t *testing.T) {
	tn := newTestNet(t, "")
	p1, p2 := tn.pod(t, "mac-1"), tn.pod(t, "mac-2")
	if err := tn.add(p1); err != nil {
		t.Fatalf("Add: %v", err)
	}
	mac := func() string {
		return strings.Fields(testenv.Run(t, tn.node, "cat", "/sys/class/net/nbt0/address"))[0]
	}
	before := mac()
	if err := tn.add(p2); err != nil {
		t.Fatalf("Add: %v", err)
	}
	if err := tn.del(p1); err != nil {
		t.Fatalf("Del: %v", err)
	}
	if after := mac(); after != before {
		t.Errorf("bridge MAC changed from %s to %s as ports came and went", before, after)
	}
	if err := tn.del(p2); err != nil {
		t.Fatalf("Del: %v", err)
	}
	tn.assertNothingLeft(t)
}

func TestDelIsIdempotent(t *testing.T) {
	tn := newTestNet(t, "")
	p := tn.pod(t, "twice")
	if err := tn.add(p); err != nil {
		t.Fatalf("Add: %v", err)
	}
	for i := range 2 {
		if err := tn.del(p); err != nil {
			t.Fatalf("Del #%d: %v", i+1, err)
		}
	}
	gone := Pod{ContainerID: "never", Netns: "/var/run/netns/nb-does-not-exist", IfName: "eth0"}
	if err := tn.del(gone); err != nil {
		t.Errorf("Del with a missing netns: %v", err)
	}
	tn.assertNothingLeft(t)
}

// TestForceAddressSameSubnet: replacing an address of the gateway's own
// subnet must not lose the gateway, which the kernel made a secondary of it.
func TestForceAddressSameSubnet(t *testing.T) {
	tn := newTestNet(t, `,"forceAddress":true`)
	testenv.Run(t, tn.node, "ip", "link", "add", "nbt0", "type", "bridge")
	testenv.Run(t, tn.node, "ip", "addr", "add", "10.1.0.254/24", "dev", "nbt0")
	if err := tn.add(tn.pod(t, "same-subnet")); err != nil {
		t.Fatalf("Add: %v", err)
	}
	out := testenv.Run(t, tn.node, "ip", "-o", "-4", "addr", "show", "dev", "nbt0")
	if !strings.Contains(out, "10.1.0.1/24") || strings.Contains(out, "10.1.0.254") {
		t.Errorf("bridge addresses after forceAddress over its own subnet:\n%s", out)
	}
}

// TestDelPodAttachedByReference: a pod whose host veth has another name than
// nodebridge's (the reference plugin's random one) is still deleted, from
// the pod's side, after its peer is checked to be a port of the bridge.
func TestDelPodAttachedByReference(t *testing.T) {
	tn := newTestNet(t, "")
	p := tn.pod(t, "by-reference")
	if err := tn.add(p); err != nil {
		t.Fatalf("Add: %v", err)
	}
	host := hostVethName(p)
	testenv.Run(t, tn.node, "ip", "link", "set", "dev", host, "down")
	testenv.Run(t, tn.node, "ip", "link", "set", "dev", host, "name", "vethref0")
	testenv.Run(t, tn.node, "ip", "link", "set", "dev", "vethref0", "up")
	if err := tn.del(p); err != nil {
		t.Fatalf("Del: %v", err)
	}
	tn.assertNothingLeft(t)
	if out := testenv.Run(t, filepath.Base(p.Netns), "ip", "-o", "link", "show"); strings.Contains(out, "eth0") {
		t.Errorf("pod kept eth0:\n%s", out)
	}
}
