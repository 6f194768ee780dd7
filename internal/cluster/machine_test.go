package cluster

import (
	"fmt"
	"os"
	"testing"

	"github.com/nodebridge/nodebridge/internal/hoststate"
	"github.com/nodebridge/nodebridge/internal/netnstest"
)

// TestMain runs the tests between two fingerprints: netnstest's of the
// machine's network, and hoststate.Kubelet's of what a kubelet node could leave
// on the machine itself.
func TestMain(m *testing.M) {
	before := hoststate.Kubelet()
	code := netnstest.Main(m)
	after := hoststate.Kubelet()
	if diff := hoststate.Diff(before, after); diff != "" {
		fmt.Fprintf(os.Stderr, "cluster: the machine changed during the tests:\n%s", diff)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}
