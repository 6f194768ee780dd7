package testenv

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// Main runs the package's tests between two snapshots of the machine's state
// and returns the exit code: non-zero when the tests failed or when anything
// in the snapshot changed. The snapshot is the root netns's network and the
// named netns (those other test processes make and remove meanwhile left
// out), plus each extra snapshot given (Kubelet, for tests that run kubelet
// nodes). Use as
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
func Main(m *testing.M, extra ...func() []string) int {
	before := fingerprint(extra)
	code := m.Run()
	after := fingerprint(extra)
	if diff := Diff(before, after); diff != "" {
		fmt.Fprintf(os.Stderr, "testenv: the machine's state changed during the tests:\n%s", diff)
		return 1
	}
	return code
}

// fingerprint is the machine's network state, its named netns but those of
// other test processes, and the extra snapshots.
func fingerprint(extra []func() []string) []string {
	lines := append(Network(), Netns(func(name string) bool { return !OthersNetns(name) })...)
	for _, f := range extra {
		lines = append(lines, f()...)
	}
	return lines
}

// State is what a demo or benchmark must leave as it found it: the root
// netns's network, the named netns whose names start with prefix (its own),
// and each extra snapshot given. Compared before and after with Diff, it
// shows the run left the machine as it found it. It must run on a thread in
// the root netns, as every unlocked one is: the tools it runs read the netns
// of the thread that starts them.
func State(prefix string, extra ...func() []string) []string {
	lines := append(Network(), Netns(func(name string) bool { return strings.HasPrefix(name, prefix) })...)
	for _, f := range extra {
		lines = append(lines, f()...)
	}
	return lines
}
