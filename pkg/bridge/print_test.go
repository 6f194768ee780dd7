package bridge

import (
	"bytes"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// libraryPrint is what types.PrintResult writes for r as version.
func libraryPrint(t *testing.T, r *current.Result, version string) ([]byte, error) {
	t.Helper()
	res, err := r.GetAsVersion(version)
	if err != nil {
		t.Fatalf("GetAsVersion(%s): %v", version, err)
	}
	var out bytes.Buffer
	err = res.PrintTo(&out)
	return out.Bytes(), err
}

// checkPrint insists PrintResult writes what the library writes, and fails
// where it fails.
func checkPrint(t *testing.T, r *current.Result, version string) {
	t.Helper()
	want, wantErr := libraryPrint(t, r, version)
	var got bytes.Buffer
	err := PrintResult(&got, r, version)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("PrintResult(%s): error %v, want as the library: %v", version, err, wantErr)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("PrintResult(%s) =\n%s\nwant, as types.PrintResult writes it:\n%s", version, got.Bytes(), want)
	}
}

func TestPrintResultMatchesLibrary(t *testing.T) {
	v4, v6 := ipConfig(t, "10.88.0.5/16", "10.88.0.1"), ipConfig(t, "fd00::5/64", "fd00::1")
	v4.Interface, v6.Interface = current.Int(2), current.Int(2)
	noGW := ipConfig(t, "10.1.2.3/24", "")
	table, scope := 100, 0
	full := route(t, "192.168.0.0/16", "10.88.0.254")
	full.MTU, full.AdvMSS, full.Priority, full.Table, full.Scope = 1400, 1360, 5, &table, &scope
	ifaces := []*current.Interface{{Name: "cni0", Mac: "0a:58:0a:58:00:01"}, {Name: "nb0123456789abc", Mac: "0a:58:0a:58:00:02"},
		{Name: "eth0", Mac: "0a:58:0a:58:00:05", Sandbox: "/var/run/netns/pod"}}
	odd := []*current.Interface{{Name: "eth0", Mtu: 9000, PciID: "0000:00:1f.6", SocketPath: "/run/a<b>&\"c\"\\é\x01", Sandbox: "/run/ü"}}
	tests := []struct {
		name string
		r    *current.Result
	}{
		{"empty", &current.Result{}},
		{"a bench ADD", &current.Result{Interfaces: ifaces, IPs: []*current.IPConfig{v4}, Routes: []*types.Route{route(t, "0.0.0.0/0", "10.88.0.1")}}},
		{"dual stack with DNS", &current.Result{Interfaces: ifaces, IPs: []*current.IPConfig{v4, v6},
			Routes: []*types.Route{route(t, "0.0.0.0/0", ""), route(t, "::/0", "fd00::1"), full},
			DNS:    types.DNS{Nameservers: []string{"10.96.0.10"}, Domain: "cluster.local", Search: []string{"svc.cluster.local", "cluster.local"}, Options: []string{"ndots:5"}}}},
		{"layer 2 only", &current.Result{Interfaces: ifaces}},
		{"no gateway, no interface index", &current.Result{IPs: []*current.IPConfig{noGW}}},
		{"odd strings and every interface field", &current.Result{Interfaces: odd, DNS: types.DNS{Domain: "<x>"}}},
		{"a nil interface: left to the library", &current.Result{Interfaces: []*current.Interface{nil, ifaces[0]}}},
		{"a malformed gateway: left to the library", &current.Result{IPs: []*current.IPConfig{{Address: v4.Address, Gateway: net.IP{1, 2, 3}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			versions := []string{"1.0.0", "1.1.0", "0.4.0", "0.3.1"}
			if tt.r.Interfaces != nil && tt.r.Interfaces[0] == nil {
				versions = versions[:2] // the library's down-conversion dereferences every interface
			}
			for _, v := range versions {
				checkPrint(t, tt.r, v)
			}
		})
	}
}

// TestPrintResultRandom compares with the library on many generated results.
func TestPrintResultRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	strs := []string{"", "eth0", "cni0", "a\"b", "<&>", "é", "\u2028", "\x7f", "x\\y", "0a:58:00:00:00:01", "\xff"}
	str := func() string { return strs[rng.IntN(len(strs))] }
	ip := func() net.IP {
		switch rng.IntN(3) {
		case 0:
			return nil
		case 1:
			return net.IPv4(10, byte(rng.IntN(256)), 0, byte(rng.IntN(256))).To4()
		}
		return net.ParseIP("fd00::7")
	}
	num := func() int { return []int{0, 0, 1, 1500, -3, 1 << 40}[rng.IntN(6)] }
	ptr := func() *int {
		if rng.IntN(2) == 0 {
			return nil
		}
		n := num()
		return &n
	}
	for i := range 500 {
		r := &current.Result{DNS: types.DNS{Domain: str()}}
		for range rng.IntN(4) {
			r.Interfaces = append(r.Interfaces, &current.Interface{Name: str(), Mac: str(), Mtu: num(), Sandbox: str(), SocketPath: str(), PciID: str()})
			r.DNS.Search = append(r.DNS.Search, str())
		}
		for range rng.IntN(3) {
			a := ip()
			if a == nil {
				a = net.IPv4(10, 0, 0, 9).To4()
			}
			r.IPs = append(r.IPs, &current.IPConfig{Interface: ptr(), Address: net.IPNet{IP: a, Mask: net.CIDRMask(rng.IntN(8*len(a)+1), 8*len(a))}, Gateway: ip()})
			r.Routes = append(r.Routes, &types.Route{Dst: net.IPNet{IP: a, Mask: net.CIDRMask(0, 8*len(a))}, GW: ip(),
				MTU: num(), AdvMSS: num(), Priority: num(), Table: ptr(), Scope: ptr()})
		}
		for _, v := range []string{"1.0.0", "1.1.0"} {
			checkPrint(t, r, v)
		}
		if t.Failed() {
			t.Fatalf("result %d differs", i)
		}
	}
}
