package main_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// podSubnet is every fixture's default pod subnet: each test has its own node
// netns, so the same subnet never meets itself.
const podSubnet = "10.244.0.0/24"

// fixture is one node netns with one CNI network on it.
type fixture struct {
	t       *testing.T
	node    string // node netns name
	name    string // CNI network name, unique per fixture
	bridge  string // bridge name, unique per fixture
	subnet  string // ipam.subnet
	dataDir string // ipam.dataDir, a t.TempDir
}

// newFixture makes a node netns (FORWARD policy DROP) and names a network on
// it whose host-local state lives in a temp dir.
func newFixture(t *testing.T, subnet string) *fixture {
	t.Helper()
	id := fmt.Sprintf("%08x", rand.Uint32())
	return &fixture{
		t:       t,
		node:    testenv.NewNode(t),
		name:    "nb-it-" + id,
		bridge:  "nb" + id,
		subnet:  subnet,
		dataDir: t.TempDir(),
	}
}

// conf is the network config for specVersion, as a map a test may change
// before it is sent.
func (f *fixture) conf(specVersion string) map[string]any {
	return map[string]any{
		"cniVersion": specVersion,
		"name":       f.name,
		"type":       "nodebridge",
		"bridge":     f.bridge,
		"isGateway":  true,
		"ipMasq":     true,
		"ipam": map[string]any{
			"type":    "host-local",
			"subnet":  f.subnet,
			"dataDir": f.dataDir,
			"routes":  []any{map[string]any{"dst": "0.0.0.0/0"}},
		},
	}
}

// pod is one attachment: a pod netns, its container id and interface name.
type pod struct {
	ns     string
	id     string
	ifName string
}

// newPod makes a pod netns, deleted when the test ends.
func (f *fixture) newPod() pod {
	f.t.Helper()
	ns := testenv.NewNS(f.t, "pod")
	return pod{ns: ns, id: "ctr-" + ns, ifName: "eth0"}
}

// callFor is the invocation of command for p with conf on stdin.
func (f *fixture) callFor(command string, p pod, conf map[string]any) call {
	f.t.Helper()
	return call{
		Command:     command,
		ContainerID: p.id,
		Netns:       testenv.Path(p.ns),
		IfName:      p.ifName,
		Conf:        mustJSON(f.t, conf),
	}
}

// run invokes the plugin in the node and fails the test on an exec error or
// a broken exit-code contract; the CNI outcome itself is left to the caller.
func (f *fixture) run(c call) outcome {
	f.t.Helper()
	o, err := invoke(f.node, c)
	if err != nil {
		f.t.Fatal(err)
	}
	return o
}

// add attaches p with a 1.1.0 config and returns the decoded result and the
// raw stdout (a CHECK's prevResult).
func (f *fixture) add(p pod) (*current.Result, json.RawMessage) {
	f.t.Helper()
	o := f.run(f.callFor("ADD", p, f.conf("1.1.0")))
	return mustResult(f.t, o, "1.1.0"), o.Stdout
}

// del detaches p and fails the test unless DEL succeeded.
func (f *fixture) del(p pod) {
	f.t.Helper()
	mustSucceed(f.t, f.run(f.callFor("DEL", p, f.conf("1.1.0"))), "DEL "+p.id)
}

// vethNames lists the veth devices in netns.
func vethNames(t *testing.T, netns string) []string {
	t.Helper()
	var names []string
	for _, l := range ipAddrs(t, netns, "type", "veth") {
		names = append(names, l.IfName)
	}
	slices.Sort(names)
	return names
}

// allocations lists the address files in the network's host-local
// directory: the names that are addresses, not the lock, last-reserved,
// index or note bookkeeping.
func (f *fixture) allocations() []string {
	f.t.Helper()
	entries, err := os.ReadDir(filepath.Join(f.dataDir, f.name))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		f.t.Fatalf("read allocations of %s: %v", f.name, err)
	}
	var ips []string
	for _, e := range entries {
		if _, err := netip.ParseAddr(e.Name()); err == nil {
			ips = append(ips, e.Name())
		}
	}
	return ips
}

// nbRules returns the lines of the node's iptables-save and ip6tables-save
// that mention a nodebridge chain (NB-...): its chains, jumps and rules.
func (f *fixture) nbRules() []string {
	f.t.Helper()
	var lines []string
	for _, save := range []string{"iptables-save", "ip6tables-save"} {
		for _, l := range strings.Split(testenv.Run(f.t, f.node, save), "\n") {
			if strings.Contains(l, "NB-") {
				lines = append(lines, save+": "+l)
			}
		}
	}
	return lines
}

// assertClean fails the test if the node keeps any veth other than keep,
// any allocation, or any nodebridge rule.
func (f *fixture) assertClean(keep ...string) {
	f.t.Helper()
	if err := waitReaped(f.node); err != nil { // DELs made by cnitool or a runtime
		f.t.Error(err)
	}
	for _, v := range vethNames(f.t, f.node) {
		if !slices.Contains(keep, v) {
			f.t.Errorf("veth %s left in node %s", v, f.node)
		}
	}
	if a := f.allocations(); len(a) > 0 {
		f.t.Errorf("allocations left in %s: %v", filepath.Join(f.dataDir, f.name), a)
	}
	if r := f.nbRules(); len(r) > 0 {
		f.t.Errorf("nodebridge rules left in node %s:\n%s", f.node, strings.Join(r, "\n"))
	}
}

// ipLink is the part of `ip -j addr show` the tests read.
type ipLink struct {
	IfName   string   `json:"ifname"`
	Master   string   `json:"master"`
	Address  string   `json:"address"` // MAC
	MTU      int      `json:"mtu"`
	Flags    []string `json:"flags"`
	AddrInfo []struct {
		Local     string `json:"local"`
		PrefixLen int    `json:"prefixlen"`
	} `json:"addr_info"`
}

// ipAddrs runs `ip -j addr show SELECTORS` in netns.
func ipAddrs(t *testing.T, netns string, selectors ...string) []ipLink {
	t.Helper()
	argv := append([]string{"ip", "-j", "addr", "show"}, selectors...)
	out := testenv.Run(t, netns, argv...)
	var links []ipLink
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		t.Fatalf("decode %s in %s: %v\n%s", strings.Join(argv, " "), netns, err, out)
	}
	return links
}

// hasAddr reports whether l carries addr/prefix.
func (l ipLink) hasAddr(addr string, prefix int) bool {
	for _, a := range l.AddrInfo {
		if a.Local == addr && a.PrefixLen == prefix {
			return true
		}
	}
	return false
}
