package ipam

import (
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"testing"
)

func TestPoolRouteAttributes(t *testing.T) {
	n := func(v int) *int { return &v }
	c := Config{Subnet: "10.0.0.0/24", Routes: []RouteConfig{
		{Dst: "10.9.0.0/16", Priority: 4294967295, Table: n(4294967295), Scope: n(0), MTU: 68, AdvMSS: 65495},
		{Dst: "10.8.0.0/16", Table: n(0), Scope: n(200), MTU: 65520, AdvMSS: 1},
		{Dst: "fd01::/16", Scope: n(0)}, // universe is what the kernel gives an IPv6 route
		{Dst: "fd00::/8", Priority: 7, Table: n(100), Scope: n(0), MTU: 1280},
	}}
	got := mustPool(t, c).Routes
	want := []Route{
		{Dst: netip.MustParsePrefix("10.9.0.0/16"), Priority: 4294967295, Table: n(4294967295), Scope: n(0), MTU: 68, AdvMSS: 65495},
		{Dst: netip.MustParsePrefix("10.8.0.0/16"), Table: n(0), Scope: n(200), MTU: 65520, AdvMSS: 1},
		{Dst: netip.MustParsePrefix("fd01::/16"), Scope: n(0)},
		{Dst: netip.MustParsePrefix("fd00::/8"), Priority: 7, Table: n(100), Scope: n(0), MTU: 1280},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Routes:\n got %+v\nwant %+v", got, want)
	}
	// An IPv4 route of link or host scope is fine without a gateway: no
	// explicit gw, and no IPv4 set to lend one.
	v6 := Config{Subnet: "fd00::/64", Routes: []RouteConfig{{Dst: "10.0.0.0/8", Scope: n(253)}, {Dst: "10.1.0.0/16", Scope: n(254)}}}
	if rts := mustPool(t, v6).Routes; *rts[0].Scope != 253 || *rts[1].Scope != 254 {
		t.Errorf("scopes %d, %d; want 253, 254", *rts[0].Scope, *rts[1].Scope)
	}
}

func TestPoolRouteAttributesRefused(t *testing.T) {
	n := func(v int) *int { return &v }
	v4 := func(rcs ...RouteConfig) Config { return Config{Subnet: "10.0.0.0/24", Routes: rcs} }
	tests := []struct {
		name  string
		in    Config
		kind  error
		wants []string
	}{
		{"negative", v4(RouteConfig{Dst: "10.9.0.0/16"}, RouteConfig{Dst: "10.9.0.0/16", Priority: -1, Table: n(-1), Scope: n(-1), MTU: -1, AdvMSS: -1}), ErrInvalid, []string{
			`ipam.routes[1].mtu "-1": not 0 (unset) or 68-65520`,
			`ipam.routes[1].advmss "-1": not 0 (unset) or 1-65495`,
			`ipam.routes[1].priority "-1": not 0-4294967295`,
			`ipam.routes[1].table "-1": not 0-4294967295`,
			`ipam.routes[1].scope "-1": not 0-255`,
		}},
		{"too large", v4(RouteConfig{Dst: "10.9.0.0/16", Priority: 1 << 32, Table: n(1 << 32), Scope: n(256), MTU: 65521, AdvMSS: 65496}), ErrInvalid, []string{
			`ipam.routes[0].mtu "65521": not 0 (unset) or 68-65520`,
			`ipam.routes[0].advmss "65496": not 0 (unset) or 1-65495`,
			`ipam.routes[0].priority "4294967296": not 0-4294967295`,
			`ipam.routes[0].table "4294967296": not 0-4294967295`,
			`ipam.routes[0].scope "256": not 0-255`,
		}},
		{"mtu below the minimum", Config{Subnet: "fd00::/64", Routes: []RouteConfig{{Dst: "10.0.0.0/8", MTU: 67}, {Dst: "fd01::/16", MTU: 1279}}}, ErrInvalid, []string{
			`ipam.routes[0].mtu "67": not 0 (unset) or 68-65520`,
			`ipam.routes[1].mtu "1279": not 0 (unset) or 1280-65520`,
		}},
		{"scope on IPv6", v4(RouteConfig{Dst: "fd01::/16", Scope: n(253)}), ErrUnsupported, []string{
			`ipam.routes[0].scope "253": the kernel gives every IPv6 route scope 0 (universe)`,
		}},
		{"scope nowhere", Config{Subnet: "fd00::/64", Routes: []RouteConfig{{Dst: "10.0.0.0/8", Scope: n(255)}}}, ErrUnsupported, []string{
			`ipam.routes[0].scope "255": the kernel adds no route of scope nowhere`,
		}},
		{"link scope via gw", v4(RouteConfig{Dst: "10.9.0.0/16", GW: "10.0.0.9", Scope: n(253)}), ErrUnsupported, []string{
			`ipam.routes[0].scope "253": the kernel adds no route of scope link or host via a gateway (gw 10.0.0.9)`,
		}},
		{"host scope via the family's gateway", v4(RouteConfig{Dst: "10.9.0.0/16", Scope: n(254)}), ErrUnsupported, []string{
			`ipam.routes[0].scope "254": the kernel adds no route of scope link or host via a gateway (the IPv4 gateway 10.0.0.1)`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tt.in.Pool()
			if p != nil || !errors.Is(err, tt.kind) {
				t.Fatalf("Pool = %v, %v; want nil and an error wrapping %v", p, err, tt.kind)
			}
			if got := errLines(err); !slices.Equal(got, tt.wants) {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.wants)
			}
		})
	}
}
