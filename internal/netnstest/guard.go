package netnstest

import (
	"fmt"
	"os"
	"testing"

	"github.com/nodebridge/nodebridge/internal/hoststate"
)

// Main runs the package's tests between two fingerprints of the machine's
// network state and returns the exit code: non-zero when the tests failed or
// when anything in the fingerprint changed. Use as
//
//	func TestMain(m *testing.M) { os.Exit(netnstest.Main(m)) }
func Main(m *testing.M) int {
	before := fingerprint()
	code := m.Run()
	after := fingerprint()
	if diff := hoststate.Diff(before, after); diff != "" {
		fmt.Fprintf(os.Stderr, "netnstest: the machine's network state changed during the tests:\n%s", diff)
		return 1
	}
	return code
}

// fingerprint is the machine's network state and its named netns, those
// other test processes make and remove meanwhile left out.
func fingerprint() []string {
	return append(hoststate.Network(), hoststate.Netns(func(name string) bool { return !hoststate.OthersNetns(name) })...)
}
