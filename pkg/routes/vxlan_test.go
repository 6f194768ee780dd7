package routes

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

func TestVTEPMAC(t *testing.T) {
	if got := VTEPMAC(netip.MustParseAddr("198.18.1.12")).String(); got != "0e:6e:c6:12:01:0c" {
		t.Errorf("IPv4: got %s", got)
	}
	a, b := VTEPMAC(netip.MustParseAddr("fd00:198:18::11")), VTEPMAC(netip.MustParseAddr("fd00:198:19::11"))
	if a[0] != 0x0e || a.String() == b.String() {
		t.Errorf("IPv6: %s and %s: want 0e:… and different", a, b)
	}
	for _, ip := range []string{"10.0.0.1", "fd00::1"} {
		if m := VTEPMAC(netip.MustParseAddr(ip)); m[0]&1 != 0 || m[0]&2 == 0 {
			t.Errorf("%s: %s is not locally administered unicast", ip, m)
		}
	}
}

// requireVXLAN skips when the kernel cannot make VXLAN devices (no
// module), saying so; under CI=true too, as a missing kernel feature.
func requireVXLAN(t *testing.T, th *testHost) {
	t.Helper()
	out, err := testenv.RunErr(th.name, "ip", "link", "add", "vxprobe", "type", "vxlan", "id", "9", "dstport", "4789", "local", "198.18.0.11")
	if err != nil {
		t.Skipf("kernel has no VXLAN devices (ip link add type vxlan: %v %s)", err, out)
	}
	testenv.Run(t, th.name, "ip", "link", "del", "vxprobe")
}

// testTunnel is a tunnel of th's IPv4 underlay with two peers.
func testTunnel(th *testHost) *Tunnel {
	u := &Underlay{Addr: netip.MustParseAddr("198.18.0.11"), LinkIndex: th.link, LinkName: "ul0", MTU: 1400}
	return &Tunnel{Name: "nb.vxlan", VNI: 1, Port: 8472, Local: u.Addr, Underlay: u,
		VTEP: netip.MustParseAddr("10.244.1.0"), Peers: []Peer{
			peer("n2", "10.244.2.0", "198.18.1.12"),
			peer("n3", "10.244.3.0", "198.18.1.13"),
		}}
}

func peer(node, vtep, remote string) Peer {
	r := netip.MustParseAddr(remote)
	return Peer{Node: node, VTEP: netip.MustParseAddr(vtep), MAC: VTEPMAC(r), Remote: r}
}

// tunnelState is the device, its address, neighbours and FDB entries as ip
// and bridge print them, normalised.
func tunnelState(t *testing.T, th *testHost, name string) (link string, state []string) {
	t.Helper()
	link = testenv.Run(t, th.name, "ip", "-d", "link", "show", name)
	for _, argv := range [][]string{
		{"ip", "-4", "-br", "addr", "show", "dev", name},
		{"ip", "neigh", "show", "dev", name, "nud", "permanent"},
		{"ip", "-6", "neigh", "show", "dev", name, "nud", "permanent"},
		{"bridge", "fdb", "show", "dev", name},
	} {
		for _, l := range strings.Split(strings.TrimSpace(testenv.Run(t, th.name, argv...)), "\n") {
			if l = strings.Join(strings.Fields(l), " "); l != "" {
				state = append(state, l)
			}
		}
	}
	return link, state
}

// SyncTunnel makes the device as documented and keeps its neighbours and
// FDB entries those of the peers: a peer moving, one deleted by hand, one
// added by hand, a peer gone, and a new local address all converge.
func TestTunnelKernel(t *testing.T) {
	th := newHost(t)
	requireVXLAN(t, th)
	s := NewSyncer(th.h, th.rt, discard())
	tun := testTunnel(th)
	idx, changes, err := s.SyncTunnel(tun)
	if err != nil || idx == 0 || changes == 0 {
		t.Fatalf("first sync: index %d, %d changes, %v", idx, changes, err)
	}
	link, state := tunnelState(t, th, "nb.vxlan")
	for _, want := range []string{"mtu 1350", "link/ether 0e:6e:c6:12:00:0b", "vxlan id 1 local 198.18.0.11 dev ul0", "dstport 8472", "nolearning", "state UNKNOWN"} {
		if !strings.Contains(link, want) {
			t.Errorf("device: no %q in\n%s", want, link)
		}
	}
	want := []string{
		"nb.vxlan UNKNOWN 10.244.1.0/32",
		"10.244.2.0 lladdr 0e:6e:c6:12:01:0c PERMANENT",
		"10.244.3.0 lladdr 0e:6e:c6:12:01:0d PERMANENT",
		"0e:6e:c6:12:01:0c dst 198.18.1.12 self permanent",
		"0e:6e:c6:12:01:0d dst 198.18.1.13 self permanent",
	}
	checkSet(t, "after the first sync", state, want)
	if _, changes, err := s.SyncTunnel(tun); err != nil || changes != 0 {
		t.Errorf("second sync: %d changes, %v; want none", changes, err)
	}

	// Routes through it, onlink.
	r := Route{Dst: netip.MustParsePrefix("10.244.2.0/24"), Gw: netip.MustParseAddr("10.244.2.0"), LinkIndex: idx, Onlink: true, Node: "n2"}
	if _, n, err := s.Sync(map[netip.Prefix]Route{r.Dst: r}); err != nil || n != 1 {
		t.Fatalf("route sync: %d changes, %v", n, err)
	}
	if got := th.routes(t, "proto", "78"); !slices.Equal(got, []string{"10.244.2.0/24 via 10.244.2.0 dev nb.vxlan onlink"}) {
		t.Errorf("routes: %q", got)
	}
	if _, n, err := s.Sync(map[netip.Prefix]Route{r.Dst: r}); err != nil || n != 0 {
		t.Errorf("route sync again: %d changes, %v; want none", n, err)
	}

	// n2 moves to another address, n3's entry is deleted by hand, a
	// stranger's is added by hand.
	testenv.Run(t, th.name, "bridge", "fdb", "del", "0e:6e:c6:12:01:0d", "dev", "nb.vxlan", "dst", "198.18.1.13")
	testenv.Run(t, th.name, "bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "nb.vxlan", "dst", "198.18.1.99")
	testenv.Run(t, th.name, "ip", "neigh", "replace", "10.244.9.0", "lladdr", "0e:00:00:00:00:09", "dev", "nb.vxlan", "nud", "permanent")
	tun.Peers[0] = peer("n2", "10.244.2.0", "198.18.2.12")
	if _, _, err := s.SyncTunnel(tun); err != nil {
		t.Fatal(err)
	}
	_, state = tunnelState(t, th, "nb.vxlan")
	checkSet(t, "after the repair", state, []string{
		"nb.vxlan UNKNOWN 10.244.1.0/32",
		"10.244.2.0 lladdr 0e:6e:c6:12:02:0c PERMANENT",
		"10.244.3.0 lladdr 0e:6e:c6:12:01:0d PERMANENT",
		"0e:6e:c6:12:02:0c dst 198.18.2.12 self permanent",
		"0e:6e:c6:12:01:0d dst 198.18.1.13 self permanent",
	})

	// A second destination appended to a peer's MAC goes; the right one stays.
	testenv.Run(t, th.name, "bridge", "fdb", "append", "0e:6e:c6:12:01:0d", "dev", "nb.vxlan", "dst", "198.18.9.9")
	if _, _, err := s.SyncTunnel(tun); err != nil {
		t.Fatal(err)
	}
	if fdb := testenv.Run(t, th.name, "bridge", "fdb", "show", "dev", "nb.vxlan"); strings.Contains(fdb, "198.18.9.9") ||
		!strings.Contains(fdb, "0e:6e:c6:12:01:0d dst 198.18.1.13") {
		t.Errorf("fdb after an appended destination:\n%s", fdb)
	}

	// n3 goes.
	tun.Peers = tun.Peers[:1]
	if _, _, err := s.SyncTunnel(tun); err != nil {
		t.Fatal(err)
	}
	_, state = tunnelState(t, th, "nb.vxlan")
	checkSet(t, "after n3 went", state, []string{
		"nb.vxlan UNKNOWN 10.244.1.0/32",
		"10.244.2.0 lladdr 0e:6e:c6:12:02:0c PERMANENT",
		"0e:6e:c6:12:02:0c dst 198.18.2.12 self permanent",
	})

	// The node's own address changes: the device is made again, with the
	// new MAC.
	testenv.Run(t, th.name, "ip", "addr", "add", "198.18.0.21/24", "dev", "ul0")
	tun.Local, tun.Underlay.Addr = netip.MustParseAddr("198.18.0.21"), netip.MustParseAddr("198.18.0.21")
	if _, _, err := s.SyncTunnel(tun); err != nil {
		t.Fatal(err)
	}
	link, state = tunnelState(t, th, "nb.vxlan")
	if !strings.Contains(link, "local 198.18.0.21 ") || !strings.Contains(link, "link/ether 0e:6e:c6:12:00:15") {
		t.Errorf("device after the local address changed:\n%s", link)
	}
	checkSet(t, "after the move", state, []string{
		"nb.vxlan UNKNOWN 10.244.1.0/32",
		"10.244.2.0 lladdr 0e:6e:c6:12:02:0c PERMANENT",
		"0e:6e:c6:12:02:0c dst 198.18.2.12 self permanent",
	})

	if ok, err := s.DeleteTunnel("nb.vxlan"); !ok || err != nil {
		t.Fatalf("delete: %v %v", ok, err)
	}
	if ok, err := s.DeleteTunnel("nb.vxlan"); ok || err != nil {
		t.Errorf("delete again: %v %v, want nothing to do", ok, err)
	}
	if ok, err := s.DeleteTunnel("ul0"); ok || err != nil {
		t.Errorf("delete of a veth: %v %v, want it left alone", ok, err)
	}
}

// Another VXLAN device with the same VNI and port (flannel's, left
// behind) makes the add fail with an error that says what to do.
func TestTunnelVNIInUse(t *testing.T) {
	th := newHost(t)
	requireVXLAN(t, th)
	testenv.Run(t, th.name, "ip", "link", "add", "flannel.1", "type", "vxlan", "id", "1", "local", "198.18.0.11", "dev", "ul0", "dstport", "8472", "nolearning")
	testenv.Run(t, th.name, "ip", "link", "set", "flannel.1", "up")
	_, _, err := NewSyncer(th.h, th.rt, discard()).SyncTunnel(testTunnel(th))
	if err == nil || !strings.Contains(err.Error(), "flannel.1 say, has VNI 1 on UDP port 8472") {
		t.Fatalf("got %v, want the VNI named", err)
	}
}

// An IPv6 tunnel: the MTU less 70, the VTEP a /128 without DAD.
func TestTunnelKernelIPv6(t *testing.T) {
	th := newHost(t)
	requireVXLAN(t, th)
	s := NewSyncer(th.h, th.rt, discard())
	u := &Underlay{Addr: netip.MustParseAddr("fd00:198:18::11"), LinkIndex: th.link, LinkName: "ul0", MTU: 1400}
	r := netip.MustParseAddr("fd00:198:19::12")
	tun := &Tunnel{Name: "nb.vxlan6", VNI: 1, Port: 8472, Local: u.Addr, Underlay: u, VTEP: netip.MustParseAddr("fd00:10:244:1::"),
		Peers: []Peer{{Node: "n2", VTEP: netip.MustParseAddr("fd00:10:244:2::"), MAC: VTEPMAC(r), Remote: r}}}
	if _, _, err := s.SyncTunnel(tun); err != nil {
		t.Fatal(err)
	}
	link := testenv.Run(t, th.name, "ip", "-d", "link", "show", "nb.vxlan6")
	if !strings.Contains(link, "mtu 1330") || !strings.Contains(link, "local fd00:198:18::11") {
		t.Errorf("device:\n%s", link)
	}
	addrs := testenv.Run(t, th.name, "ip", "-6", "addr", "show", "dev", "nb.vxlan6", "scope", "global")
	if !strings.Contains(addrs, "fd00:10:244:1::/128") || strings.Contains(addrs, "tentative") {
		t.Errorf("address: %s", addrs)
	}
	mac := VTEPMAC(r).String()
	fdb := testenv.Run(t, th.name, "bridge", "fdb", "show", "dev", "nb.vxlan6")
	if !strings.Contains(fdb, mac+" dst fd00:198:19::12 self permanent") {
		t.Errorf("fdb: %s", fdb)
	}
	if _, n, err := s.SyncTunnel(tun); err != nil || n != 0 {
		t.Errorf("second sync: %d changes, %v; want none", n, err)
	}
}

func checkSet(t *testing.T, when string, got, want []string) {
	t.Helper()
	g, w := slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
	if !slices.Equal(g, w) {
		t.Errorf("%s:\ngot  %q\nwant %q", when, g, w)
	}
}
