package main_test

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRefusesClusterCIDRAtStart: a cluster CIDR that would route or exempt
// from masquerade more than a cluster's pods stops the agent at start, with
// exit status 1 and a message naming the flag, before it reaches the API
// server or the host.
func TestRefusesClusterCIDRAtStart(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "nodebridge-agent")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, tc := range []struct{ flags, want string }{
		{"--cluster-cidr=0.0.0.0/0", "cluster-cidr 0.0.0.0/0: zero length"},
		{"--cluster-cidr=::/0", "cluster-cidr ::/0: zero length"},
		{"--cluster-cidr=::ffff:10.244.0.0/112", "IPv4-mapped"},
		{"--cluster-cidr=10.244.0.0/16 --cluster-cidr=10.245.0.0/16", "at most one per family"},
		{"--cluster-cidr=10.244.0.0/33", "cluster-cidr \"10.244.0.0/33\""},
	} {
		t.Run(tc.flags, func(t *testing.T) {
			args := append([]string{"--node-name=n1", "--kubeconfig=/nonexistent", "--metrics-addr=127.0.0.1:0"},
				strings.Fields(tc.flags)...)
			out, err := exec.Command(bin, args...).CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() == 0 {
				t.Fatalf("exit: %v, want a failure\n%s", err, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("output %q does not name %q", out, tc.want)
			}
		})
	}
}
