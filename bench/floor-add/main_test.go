package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// TestMain fails the run if the test changed the machine's own network.
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// Two ADDs into one node share the bridge; each pod gets its veth end with
// its address and default route, and the host end sits on the bridge.
func TestAdd(t *testing.T) {
	node := testenv.NewNode(t)
	bin := filepath.Join(t.TempDir(), "floor-add")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	pods := []struct{ id, addr string }{
		{"0123456789abcdef", "10.88.0.2/16"},
		{"fedcba9876543210", "10.88.0.3/16"},
	}
	for _, p := range pods {
		pod := testenv.NewNS(t, "pod")
		cmd := exec.Command("ip", "netns", "exec", node, bin)
		cmd.Env = []string{"CNI_CONTAINERID=" + p.id, "CNI_NETNS=" + testenv.Path(pod), "CNI_IFNAME=eth0",
			"FLOOR_BRIDGE=cni0", "FLOOR_ADDR=" + p.addr, "FLOOR_GW=10.88.0.1", "PATH=" + os.Getenv("PATH")}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("floor-add for %s: %v\n%s", p.id, err, out)
		}
		if out := testenv.Run(t, pod, "ip", "addr", "show", "eth0"); !strings.Contains(out, "inet "+p.addr) || !strings.Contains(out, "UP") {
			t.Errorf("pod %s eth0:\n%s\nwant %s and UP", p.id, out, p.addr)
		}
		if out := testenv.Run(t, pod, "ip", "route", "show", "default"); !strings.Contains(out, "default via 10.88.0.1 dev eth0") {
			t.Errorf("pod %s routes:\n%s\nwant a default via 10.88.0.1", p.id, out)
		}
		host := "fl" + p.id[:12]
		if out := testenv.Run(t, node, "ip", "link", "show", host); !strings.Contains(out, "master cni0") {
			t.Errorf("host end %s:\n%s\nwant it on cni0", host, out)
		}
	}
}

func TestRejectsMissingEnv(t *testing.T) {
	t.Setenv("CNI_CONTAINERID", "short")
	t.Setenv("FLOOR_BRIDGE", "")
	if _, err := readRequest(); err == nil || !strings.Contains(err.Error(), "need CNI_CONTAINERID") {
		t.Errorf("readRequest with no bridge and a short ID: %v", err)
	}
}
