package bridge

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

func ipConfig(t *testing.T, cidr, gw string) *current.IPConfig {
	t.Helper()
	ip, n, err := net.ParseCIDR(cidr)
	if err != nil {
		t.Fatal(err)
	}
	n.IP = ip
	return &current.IPConfig{Address: *n, Gateway: net.ParseIP(gw)}
}

func route(t *testing.T, dst, gw string) *types.Route {
	t.Helper()
	_, n, err := net.ParseCIDR(dst)
	if err != nil {
		t.Fatal(err)
	}
	return &types.Route{Dst: *n, GW: net.ParseIP(gw)}
}

func TestSetIPsDefaultRoutes(t *testing.T) {
	tests := []struct {
		name    string
		ips     []*current.IPConfig
		routes  []*types.Route
		want    []string
		wantErr error
	}{
		{
			name: "dual stack gets one default per family",
			ips:  []*current.IPConfig{ipConfig(t, "10.1.0.5/24", "10.1.0.1"), ipConfig(t, "fd00::5/64", "fd00::1")},
			want: []string{"0.0.0.0/0 via 10.1.0.1", "::/0 via fd00::1"},
		},
		{
			name:   "ipam default via the same gateway is kept once",
			ips:    []*current.IPConfig{ipConfig(t, "10.1.0.5/24", "10.1.0.1")},
			routes: []*types.Route{route(t, "0.0.0.0/0", "")},
			want:   []string{"0.0.0.0/0 via <nil>"},
		},
		{
			name:    "ipam default via another gateway conflicts",
			ips:     []*current.IPConfig{ipConfig(t, "10.1.0.5/24", "10.1.0.1")},
			routes:  []*types.Route{route(t, "0.0.0.0/0", "10.1.0.254")},
			wantErr: ErrInvalid,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Config{IsGateway: true, IsDefaultGateway: true}
			res := &current.Result{}
			err := setIPs(c, res, &current.Result{IPs: tt.ips, Routes: tt.routes})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("setIPs error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			var got []string
			for _, r := range res.Routes {
				got = append(got, r.Dst.String()+" via "+r.GW.String())
			}
			if len(got) != len(tt.want) {
				t.Fatalf("routes = %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("route %d = %s, want %s", i, got[i], tt.want[i])
				}
			}
			for _, ip := range res.IPs {
				if ip.Interface == nil || *ip.Interface != containerIface {
					t.Errorf("ip %s: interface %v, want index %d", ip.Address.String(), ip.Interface, containerIface)
				}
			}
		})
	}
}

func TestSetIPsDNS(t *testing.T) {
	ipamDNS := types.DNS{Nameservers: []string{"10.0.0.10"}}
	own := types.DNS{Nameservers: []string{"1.1.1.1"}, Search: []string{"svc"}}
	res := &current.Result{}
	if err := setIPs(&Config{}, res, &current.Result{DNS: ipamDNS}); err != nil {
		t.Fatal(err)
	}
	if res.DNS.Nameservers[0] != "10.0.0.10" {
		t.Errorf("DNS = %+v, want the IPAM's", res.DNS)
	}
	res = &current.Result{}
	if err := setIPs(&Config{DNS: own}, res, &current.Result{DNS: ipamDNS}); err != nil {
		t.Fatal(err)
	}
	if res.DNS.Nameservers[0] != "1.1.1.1" || res.DNS.Search[0] != "svc" {
		t.Errorf("DNS = %+v, want the network config's own", res.DNS)
	}
}

func TestGatewayPrefixes(t *testing.T) {
	res := &current.Result{IPs: []*current.IPConfig{
		ipConfig(t, "10.1.0.5/24", "10.1.0.1"),
		ipConfig(t, "fd00::5/64", "fd00::1"),
		ipConfig(t, "10.2.0.5/16", ""),
	}}
	got := gatewayPrefixes(res)
	want := []netip.Prefix{netip.MustParsePrefix("10.1.0.1/24"), netip.MustParsePrefix("fd00::1/64")}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("gatewayPrefixes = %v, want %v", got, want)
	}
}

func TestHostVethName(t *testing.T) {
	a := hostVethName(Pod{ContainerID: "abc", IfName: "eth0"})
	if len(a) != 15 || a[:2] != "nb" {
		t.Errorf("hostVethName = %q: want nb + 13 hex, 15 bytes", a)
	}
	if a != hostVethName(Pod{ContainerID: "abc", IfName: "eth0", Netns: "/other"}) {
		t.Error("hostVethName depends on more than container ID and ifname")
	}
	if a == hostVethName(Pod{ContainerID: "abc", IfName: "eth1"}) || a == hostVethName(Pod{ContainerID: "abce", IfName: "th0"}) {
		t.Error("hostVethName collides for different attachments")
	}
}
