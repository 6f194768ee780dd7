package kubelet

import (
	"os"
	"testing"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// TestMain runs the tests between two snapshots of the machine's network and
// of what a kubelet node could leave on the machine itself.
func TestMain(m *testing.M) { os.Exit(testenv.Main(m, testenv.Kubelet)) }
