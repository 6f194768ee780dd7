package main_test

import (
	"encoding/json"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// spoofTable is table bridge nodebridge in a node as nft lists it.
type spoofTable struct {
	rules   int      // rules of chain prerouting
	ports   []string // elements of set spoofchk_ports, sorted
	allowed []string // elements of set spoofchk_allowed as "PORT . MAC", sorted
}

// spoofState reads table bridge nodebridge in node; ok is false when the
// table does not exist.
func spoofState(t *testing.T, node string) (st spoofTable, ok bool) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", node, "nft", "-j", "list", "table", "bridge", "nodebridge").Output()
	if err != nil {
		return spoofTable{}, false
	}
	var doc struct {
		Nftables []struct {
			Set *struct {
				Name string            `json:"name"`
				Elem []json.RawMessage `json:"elem"`
			} `json:"set"`
			Rule *struct {
				Chain string `json:"chain"`
			} `json:"rule"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("decode nft -j list table bridge nodebridge in %s: %v\n%s", node, err, out)
	}
	for _, o := range doc.Nftables {
		switch {
		case o.Rule != nil && o.Rule.Chain == "prerouting":
			st.rules++
		case o.Set != nil:
			st.addElements(t, o.Set.Name, o.Set.Elem)
		}
	}
	slices.Sort(st.ports)
	slices.Sort(st.allowed)
	return st, true
}

// addElements records nft's JSON elements: a name in spoofchk_ports,
// {"concat": [name, MAC]} in spoofchk_allowed.
func (st *spoofTable) addElements(t *testing.T, set string, elems []json.RawMessage) {
	t.Helper()
	for _, e := range elems {
		var name string
		var pair struct {
			Concat []string `json:"concat"`
		}
		switch {
		case set == "spoofchk_ports" && json.Unmarshal(e, &name) == nil:
			st.ports = append(st.ports, name)
		case set == "spoofchk_allowed" && json.Unmarshal(e, &pair) == nil && len(pair.Concat) == 2:
			st.allowed = append(st.allowed, pair.Concat[0]+" . "+pair.Concat[1])
		default:
			t.Errorf("unexpected element %s in set %s", e, set)
		}
	}
}

// wantSpoof fails t unless the node's spoof check has one rule and exactly
// the elements of the attachments in res: each host veth with its pod's MAC.
func (f *fixture) wantSpoof(when string, res ...*current.Result) {
	f.t.Helper()
	st, ok := spoofState(f.t, f.node)
	if !ok {
		f.t.Fatalf("%s: no table bridge nodebridge in node %s", when, f.node)
	}
	var ports, allowed []string
	for _, r := range res {
		ports = append(ports, r.Interfaces[1].Name)
		allowed = append(allowed, r.Interfaces[1].Name+" . "+r.Interfaces[2].Mac)
	}
	slices.Sort(ports)
	slices.Sort(allowed)
	if st.rules != 1 || !slices.Equal(st.ports, ports) || !slices.Equal(st.allowed, allowed) {
		f.t.Errorf("%s: %d rules, ports %q, allowed %q; want 1 rule, %q and %q", when, st.rules, st.ports, st.allowed, ports, allowed)
	}
}

// noPing fails t if netns gets a reply from addr.
func noPing(t *testing.T, netns, addr, why string) {
	t.Helper()
	if out, err := exec.Command("ip", "netns", "exec", netns, "ping", "-c2", "-W1", addr).CombinedOutput(); err == nil {
		t.Errorf("ping %s from %s got a reply %s:\n%s", addr, netns, why, out)
	}
}

// setMAC gives pod a's interface mac and has pod b forget a's old one, so
// that b's replies, ARP's included, go to the MAC a now sends from.
func setMAC(t *testing.T, a, b pod, mac string) {
	t.Helper()
	testenv.Run(t, a.ns, "ip", "link", "set", a.ifName, "address", mac)
	testenv.Run(t, b.ns, "ip", "neigh", "flush", "dev", b.ifName)
}

// spoofDrops is the packet count of the spoof check's drop rule in node.
func spoofDrops(t *testing.T, node string) int {
	t.Helper()
	out := testenv.Run(t, node, "nft", "list", "chain", "bridge", "nodebridge", "prerouting")
	m := regexp.MustCompile(`counter packets (\d+) bytes \d+ drop`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no counted drop rule in chain bridge nodebridge prerouting:\n%s", out)
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		t.Fatalf("packet count %q: %v", m[1], err)
	}
	return n
}

// TestMacSpoofChkOff is the control of TestMacSpoofChk: without
// macspoofchk, a pod that changes its MAC keeps talking, and the node has
// no spoof check table.
func TestMacSpoofChkOff(t *testing.T) {
	t.Parallel()
	f := newFixture(t, podSubnet)
	a, b := f.newPod(), f.newPod()
	f.add(a)
	resB, _ := f.add(b)
	setMAC(t, a, b, "02:de:ad:be:ef:01")
	ping(t, a.ns, resB.IPs[0].Address.IP.String())
	if _, ok := spoofState(t, f.node); ok {
		t.Error("table bridge nodebridge created without macspoofchk")
	}
	f.del(a)
	f.del(b)
	f.assertClean()
}

// TestMacSpoofChk attaches two pods with macspoofchk, one with a MAC the
// runtime chose, and checks that a pod sending from another MAC is cut off
// until it takes its own back, that CHECK sees a missing element, and that
// DEL removes each pod's elements.
func TestMacSpoofChk(t *testing.T) {
	t.Parallel()
	f := newFixture(t, podSubnet)
	conf := f.conf("1.1.0")
	conf["macspoofchk"] = true
	a, b := f.newPod(), f.newPod()
	oa := f.run(f.callFor("ADD", a, conf))
	resA := mustResult(t, oa, "1.1.0")
	cb := f.callFor("ADD", b, conf)
	cb.Args = "IgnoreUnknown=1;MAC=02:00:00:00:0b:0b"
	resB := mustResult(t, f.run(cb), "1.1.0")
	if resB.Interfaces[2].Mac != "02:00:00:00:0b:0b" {
		t.Fatalf("pod B MAC %s, want the MAC= of CNI_ARGS", resB.Interfaces[2].Mac)
	}
	f.wantSpoof("after ADD of A and B", resA, resB)
	ipB, gw := resB.IPs[0].Address.IP.String(), resB.IPs[0].Gateway.String()
	ping(t, a.ns, ipB)

	setMAC(t, a, b, "02:de:ad:be:ef:01")
	noPing(t, a.ns, ipB, "with A sending from a MAC not its own")
	if n := spoofDrops(t, f.node); n == 0 {
		t.Error("the spoof check's drop rule counted no packet")
	}
	ping(t, b.ns, gw)
	setMAC(t, a, b, resA.Interfaces[2].Mac)
	ping(t, a.ns, ipB)

	check := f.conf("1.1.0")
	check["macspoofchk"] = true
	check["prevResult"] = json.RawMessage(oa.Stdout)
	mustSucceed(t, f.run(f.callFor("CHECK", a, check)), "CHECK of an intact attachment")
	hostA, macA := resA.Interfaces[1].Name, resA.Interfaces[2].Mac
	testenv.Run(t, f.node, "nft", `delete element bridge nodebridge spoofchk_allowed { "`+hostA+`" . `+macA+` }`)
	f.checkFails(a, check, hostA+" MAC "+macA, "after deleting its spoofchk_allowed element")
	f.checkFails(a, check, "container interface "+a.ifName, "after deleting its spoofchk_allowed element")

	delA := f.callFor("DEL", a, conf)
	for range 2 { // DEL is idempotent
		mustSucceed(t, f.run(delA), "DEL of A")
	}
	f.wantSpoof("after DEL of A", resB)
	mustSucceed(t, f.run(f.callFor("DEL", b, conf)), "DEL of B")
	f.wantSpoof("after DEL of B") // the rule and sets stay, empty
	f.assertClean()
}

// TestMacSpoofChkFailedAdd: an ADD that fails after installing the pod's
// elements (no address left in a /30) removes them again.
func TestMacSpoofChkFailedAdd(t *testing.T) {
	t.Parallel()
	f := newFixture(t, tinySubnet)
	conf := f.conf("1.1.0")
	conf["macspoofchk"] = true
	first, second := f.newPod(), f.newPod()
	res := mustResult(t, f.run(f.callFor("ADD", first, conf)), "1.1.0")
	e := mustError(t, f.run(f.callFor("ADD", second, conf)))
	t.Logf("second ADD in a full /30: code %d: %s", e.Code, e.Msg)
	f.wantSpoof("after the failed ADD", res)
	mustSucceed(t, f.run(f.callFor("DEL", first, conf)), "DEL of the first pod")
	f.wantSpoof("after DEL of the first pod")
	f.assertClean()
}

// TestMacSpoofChkGC: GC removes the elements of the attachments it
// releases, and only theirs.
func TestMacSpoofChkGC(t *testing.T) {
	t.Parallel()
	f := newFixture(t, podSubnet)
	conf := f.conf("1.1.0")
	conf["macspoofchk"] = true
	keep, drop := f.newPod(), f.newPod()
	resKeep := mustResult(t, f.run(f.callFor("ADD", keep, conf)), "1.1.0")
	resDrop := mustResult(t, f.run(f.callFor("ADD", drop, conf)), "1.1.0")
	f.wantSpoof("after ADD", resKeep, resDrop)

	conf["cni.dev/valid-attachments"] = []types.GCAttachment{{ContainerID: keep.id, IfName: keep.ifName}}
	mustSucceed(t, f.run(call{Command: "GC", Conf: mustJSON(t, conf)}), "GC keeping one pod")
	f.wantSpoof("after GC keeping one pod", resKeep)
	conf["cni.dev/valid-attachments"] = []types.GCAttachment{}
	mustSucceed(t, f.run(call{Command: "GC", Conf: mustJSON(t, conf)}), "GC keeping none")
	f.wantSpoof("after GC keeping none")
	f.assertClean()
}
