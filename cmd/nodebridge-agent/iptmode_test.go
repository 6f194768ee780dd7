package main_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// TestIPTablesModeAtStart: the agent binary, started in a node whose
// FORWARD drop lives in iptables-legacy's tables, logs that it chose
// legacy and why; in a node whose drop is iptables-nft's, nft. The API
// server is unreachable, so the agent stops right after choosing.
func TestIPTablesModeAtStart(t *testing.T) {
	testenv.Tool(t, "iptables-legacy")
	testenv.Tool(t, "iptables-nft")
	bin := filepath.Join(t.TempDir(), "nodebridge-agent")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, tc := range []struct{ drop, want string }{
		{"legacy", "iptables mode legacy, because iptables-legacy holds tables"},
		{"nft", "iptables mode nft, because iptables-legacy holds no table"},
	} {
		t.Run(tc.drop, func(t *testing.T) {
			ns := testenv.NewNS(t, "ipm")
			testenv.Run(t, ns, "iptables-"+tc.drop, "-w", "-P", "FORWARD", "DROP")
			out, _ := exec.Command("ip", "netns", "exec", ns, bin, "--node-name=n1",
				"--kubeconfig=/nonexistent", "--metrics-addr=127.0.0.1:0").CombinedOutput()
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("output does not say %q:\n%s", tc.want, out)
			}
		})
	}
}
