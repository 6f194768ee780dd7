package main_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// takeIfName gives p a veth pair whose one end is named ifName, as another
// plugin or the runtime would have left it, and returns that end's ifindex.
func takeIfName(t *testing.T, p pod, ifName string) string {
	t.Helper()
	testenv.Run(t, p.ns, "ip", "link", "add", ifName, "type", "veth", "peer", "name", "nbforeign0")
	return strings.TrimSpace(testenv.Run(t, p.ns, "cat", "/sys/class/net/"+ifName+"/ifindex"))
}

// TestFaultIfNameTaken: an ADD whose CNI_IFNAME is already a link in the
// pod fails with a message naming the interface and the pod's netns, and
// takes nothing: no host veth, no address, the same rules for the
// network's live pod, the pod's link untouched. The pod can still be
// attached under another name.
func TestFaultIfNameTaken(t *testing.T) {
	t.Parallel()
	f := newFixture(t, podSubnet)
	f.add(f.newPod()) // a live neighbour: the network's rules must stay for it
	veths, allocs, rules := vethNames(t, f.node), f.allocations(), f.nbRules()
	p := f.newPod()
	index := takeIfName(t, p, p.ifName)

	e := mustError(t, f.run(f.callFor("ADD", p, f.conf("1.1.0"))))
	t.Logf("ADD with %s taken: code %d: %s", p.ifName, e.Code, e.Msg)
	for _, want := range []string{p.ifName, testenv.Path(p.ns), "already exists"} {
		if !strings.Contains(e.Msg, want) {
			t.Errorf("error %q does not name %q", e.Msg, want)
		}
	}
	if got := vethNames(t, f.node); !slices.Equal(got, veths) {
		t.Errorf("veths in the node %v, want %v", got, veths)
	}
	if got := f.allocations(); !slices.Equal(got, allocs) {
		t.Errorf("allocations %v, want %v", got, allocs)
	}
	if got := f.nbRules(); !slices.Equal(got, rules) {
		t.Errorf("rules changed:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(rules, "\n"))
	}
	if got := strings.TrimSpace(testenv.Run(t, p.ns, "cat", "/sys/class/net/"+p.ifName+"/ifindex")); got != index {
		t.Errorf("the pod's own %s: ifindex %s, want %s untouched", p.ifName, got, index)
	}

	other := p
	other.ifName = "net1"
	f.add(other)
	f.del(other)
}

// TestFaultDelSparesForeignIfName is what a runtime does next: DEL for the
// attachment whose ADD failed because CNI_IFNAME was taken. The link by
// that name is not the plugin's (no host veth of this attachment is its
// peer; another network of a multi-network pod may own it), so DEL must
// succeed and leave it.
func TestFaultDelSparesForeignIfName(t *testing.T) {
	t.Parallel()
	f := newFixture(t, podSubnet)
	p := f.newPod()
	index := takeIfName(t, p, p.ifName)
	mustError(t, f.run(f.callFor("ADD", p, f.conf("1.1.0"))))

	f.del(p)
	if !linkExists(t, p.ns, p.ifName) {
		t.Fatalf("DEL removed %s from the pod: a link the plugin did not make", p.ifName)
	}
	if got := strings.TrimSpace(testenv.Run(t, p.ns, "cat", "/sys/class/net/"+p.ifName+"/ifindex")); got != index {
		t.Errorf("the pod's own %s: ifindex %s, want %s untouched", p.ifName, got, index)
	}
	f.assertClean()
}
