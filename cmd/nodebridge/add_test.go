package main_test

import (
	"encoding/json"
	"net"
	"net/netip"
	"strings"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// TestAddTwoPods checks two pods' results against the kernel, then traffic:
// pod to pod, pod to gateway, and pod to outside masqueraded to the uplink,
// under each rules backend on a node whose FORWARD policy is DROP; DEL of
// both leaves no rule of either backend.
func TestAddTwoPods(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"iptables", "nftables"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, podSubnet)
			conf := f.conf("1.1.0")
			conf["ipMasqBackend"] = backend
			f.addTwoPods(conf, backend)
		})
	}
}

// addTwoPods is TestAddTwoPods with one config: ADD, traffic, DEL.
func (f *fixture) addTwoPods(conf map[string]any, backend string) {
	t := f.t
	out := f.newOutside()
	a, b := f.newPod(), f.newPod()
	resA := mustResult(t, f.run(f.callFor("ADD", a, conf)), "1.1.0")
	resB := mustResult(t, f.run(f.callFor("ADD", b, conf)), "1.1.0")
	addrA := f.checkResult(resA, a)
	addrB := f.checkResult(resB, b)
	f.checkKernel(resA, a)
	f.checkKernel(resB, b)
	if addrA == addrB {
		t.Fatalf("both pods got %s", addrA)
	}
	gw := resA.IPs[0].Gateway.String()

	t.Run("pod to pod", func(t *testing.T) {
		ping(t, a.ns, addrB.String())
		ping(t, b.ns, addrA.String())
	})
	t.Run("pod to gateway", func(t *testing.T) {
		ping(t, a.ns, gw)
		ping(t, b.ns, gw)
	})
	t.Run("pod to outside is masqueraded", func(t *testing.T) {
		ping(t, a.ns, outsideAddr)
		if src := sourceSeenOutside(t, b.ns, out); src != netip.MustParseAddr(nodeUplink) {
			t.Errorf("outside saw source %s, want the node's uplink %s", src, nodeUplink)
		}
	})
	f.wantOneMasquerade(backend)
	for _, p := range []pod{a, b} {
		mustSucceed(t, f.run(f.callFor("DEL", p, conf)), "DEL "+p.id)
	}
	f.assertClean(uplink)
	if tables := testenv.Run(t, f.node, "nft", "list", "tables"); strings.Contains(tables, "inet nodebridge") {
		t.Errorf("table inet nodebridge left after the last DEL:\n%s", tables)
	}
}

// wantOneMasquerade checks that the network's masquerade lives in the
// rules of backend only, and that iptables holds the network's FORWARD
// chain under either backend, since the node's FORWARD policy is DROP.
func (f *fixture) wantOneMasquerade(backend string) {
	f.t.Helper()
	rules := strings.Join(f.nbRules(), "\n")
	ipt := strings.Contains(rules, ":NB-POST-")
	nft := strings.Contains(testenv.Run(f.t, f.node, "nft", "list", "tables"), "table inet nodebridge")
	if ipt != (backend == "iptables") || nft != (backend == "nftables") {
		f.t.Errorf("backend %s: masquerade in iptables %v, in nftables %v; want in %s only", backend, ipt, nft, backend)
	}
	if !strings.Contains(rules, "iptables-save: :NB-FWD-") || strings.Contains(rules, "ip6tables-save:") {
		f.t.Errorf("backend %s: want an NB-FWD chain in iptables under FORWARD DROP, nothing in ip6tables (IPv4 network):\n%s", backend, rules)
	}
}

// checkResult asserts the shape of a 1.1.0 ADD result for p: bridge, host
// veth and container interface, one address on the container interface with
// the subnet's first host as gateway, and the configured default route.
// It returns the pod's address.
func (f *fixture) checkResult(res *current.Result, p pod) netip.Addr {
	t := f.t
	t.Helper()
	if res.CNIVersion != "1.1.0" {
		t.Errorf("result cniVersion %q, want 1.1.0", res.CNIVersion)
	}
	if len(res.Interfaces) != 3 {
		t.Fatalf("result has %d interfaces, want bridge, host veth, container: %v", len(res.Interfaces), res.Interfaces)
	}
	checkInterface(t, "bridge", res.Interfaces[0], f.bridge, "")
	checkInterface(t, "host veth", res.Interfaces[1], res.Interfaces[1].Name, "")
	checkInterface(t, "container", res.Interfaces[2], p.ifName, testenv.Path(p.ns))
	if len(res.IPs) != 1 {
		t.Fatalf("result has %d IPs, want 1: %v", len(res.IPs), res.IPs)
	}
	ip := res.IPs[0]
	if ip.Interface == nil || *ip.Interface != 2 {
		t.Errorf("ips[0].interface = %v, want 2 (the container interface)", ip.Interface)
	}
	subnet := netip.MustParsePrefix(f.subnet)
	addr, _ := netip.AddrFromSlice(ip.Address.IP)
	addr = addr.Unmap()
	if ones, _ := ip.Address.Mask.Size(); ones != subnet.Bits() || !subnet.Contains(addr) {
		t.Errorf("ips[0].address %s, want an address in %s", ip.Address.String(), subnet)
	}
	if want := subnet.Addr().Next(); ip.Gateway.String() != want.String() {
		t.Errorf("ips[0].gateway %s, want %s", ip.Gateway, want)
	}
	if !hasDefaultRoute(res) {
		t.Errorf("result routes %v lack the configured 0.0.0.0/0", res.Routes)
	}
	return addr
}

// checkInterface asserts one result interface's name, sandbox and MAC.
func checkInterface(t *testing.T, what string, i *current.Interface, name, sandbox string) {
	t.Helper()
	if i.Name == "" || i.Name != name {
		t.Errorf("%s interface name %q, want %q", what, i.Name, name)
	}
	if i.Sandbox != sandbox {
		t.Errorf("%s interface %s sandbox %q, want %q", what, i.Name, i.Sandbox, sandbox)
	}
	if _, err := net.ParseMAC(i.Mac); err != nil {
		t.Errorf("%s interface %s mac %q: %v", what, i.Name, i.Mac, err)
	}
}

func hasDefaultRoute(res *current.Result) bool {
	for _, r := range res.Routes {
		if ones, bits := r.Dst.Mask.Size(); ones == 0 && bits == 32 {
			return true
		}
	}
	return false
}

// checkKernel asserts that what the result reports is what the kernel has:
// the host veth on the bridge, the gateway on the bridge, the address and MAC
// on the container interface, and the pod's default route via the gateway.
func (f *fixture) checkKernel(res *current.Result, p pod) {
	t := f.t
	t.Helper()
	bits, _ := res.IPs[0].Address.Mask.Size()
	gw := res.IPs[0].Gateway.String()
	host := ipAddrs(t, f.node, "dev", res.Interfaces[1].Name)[0]
	if host.Master != f.bridge {
		t.Errorf("host veth %s master %q, want %s", host.IfName, host.Master, f.bridge)
	}
	if br := ipAddrs(t, f.node, "dev", f.bridge)[0]; !br.hasAddr(gw, bits) {
		t.Errorf("bridge %s lacks gateway %s/%d: %+v", f.bridge, gw, bits, br.AddrInfo)
	}
	ctr := ipAddrs(t, p.ns, "dev", p.ifName)[0]
	if !ctr.hasAddr(res.IPs[0].Address.IP.String(), bits) {
		t.Errorf("%s in %s lacks %s: %+v", p.ifName, p.ns, res.IPs[0].Address.String(), ctr.AddrInfo)
	}
	if ctr.Address != res.Interfaces[2].Mac {
		t.Errorf("%s in %s has MAC %s, result says %s", p.ifName, p.ns, ctr.Address, res.Interfaces[2].Mac)
	}
	if via, dev := route(t, p.ns, "default"); via != gw || dev != p.ifName {
		t.Errorf("default route in %s: via %s dev %s, want via %s dev %s", p.ns, via, dev, gw, p.ifName)
	}
}

// route returns the gateway and device of the route to dst ("default" or a
// prefix) in netns; both are empty when there is no such route.
func route(t *testing.T, netns, dst string) (gw, dev string) {
	t.Helper()
	var routes []struct {
		Gateway string `json:"gateway"`
		Dev     string `json:"dev"`
	}
	out := testenv.Run(t, netns, "ip", "-j", "route", "show", dst)
	if err := json.Unmarshal([]byte(out), &routes); err != nil {
		t.Fatalf("decode route %s in %s: %v\n%s", dst, netns, err, out)
	}
	if len(routes) != 1 {
		return "", ""
	}
	return routes[0].Gateway, routes[0].Dev
}
