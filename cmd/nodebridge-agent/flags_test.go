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

// TestVersionHelpLogLevel: --version prints the version stamped at build
// time and exits 0; -h prints the usage and exits 0; --log-level takes the
// four slog levels and refuses anything else with exit status 2. None of
// these reach the API server or the host.
func TestVersionHelpLogLevel(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "nodebridge-agent")
	build := exec.Command("go", "build", "-ldflags", "-X main.buildVersion=v9.8.7-test", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	bad := []string{"--node-name=n1", "--kubeconfig=/nonexistent", "--metrics-addr=127.0.0.1:0", "--cluster-cidr=0.0.0.0/0"}
	for _, tc := range []struct {
		name           string
		args           []string
		code           int
		stdout, stderr string // substrings wanted
		notStderr      string // substring not wanted
	}{
		{name: "version", args: []string{"--version"}, stdout: "nodebridge-agent v9.8.7-test\n"},
		{name: "-h", args: []string{"-h"}, stderr: "-log-level"},
		{name: "--help", args: []string{"--help"}, stderr: "-version"},
		{name: "bad level", args: []string{"--log-level=verbose"}, code: 2, stderr: `log-level "verbose"`},
		{name: "hold alone", args: []string{"--hold"}, code: 2, stderr: "--hold goes with --uninstall"},
		{name: "debug", args: append([]string{"--log-level=debug"}, bad...), code: 1, stderr: "zero length", notStderr: "log-level"},
		{name: "error", args: append([]string{"--log-level=error"}, bad...), code: 1, stderr: "zero length"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			cmd := exec.Command(bin, tc.args...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if (err == nil && tc.code != 0) || (err != nil && (!errors.As(err, &ee) || ee.ExitCode() != tc.code)) {
				t.Fatalf("exit: %v, want status %d\nstderr: %s", err, tc.code, stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stdout %q stderr %q: want %q and %q", stdout.String(), stderr.String(), tc.stdout, tc.stderr)
			}
			if tc.notStderr != "" && strings.Contains(stderr.String(), tc.notStderr) {
				t.Errorf("stderr %q names %q", stderr.String(), tc.notStderr)
			}
		})
	}
}
