package ipam

import (
	"errors"
	"io/fs"
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

func rng(subnet, start, end, gw string) Range {
	return Range{
		Subnet:  netip.MustParsePrefix(subnet),
		Start:   netip.MustParseAddr(start),
		End:     netip.MustParseAddr(end),
		Gateway: netip.MustParseAddr(gw),
	}
}

func TestPoolValid(t *testing.T) {
	tests := []struct {
		name string
		in   Config
		want Pool
	}{
		{"legacy defaults", Config{Subnet: "10.0.0.0/24"}, Pool{
			Sets: []RangeSet{{rng("10.0.0.0/24", "10.0.0.1", "10.0.0.254", "10.0.0.1")}},
		}},
		{"host bits masked", Config{Subnet: "10.0.0.5/24"}, Pool{
			Sets: []RangeSet{{rng("10.0.0.0/24", "10.0.0.1", "10.0.0.254", "10.0.0.1")}},
		}},
		{"slash 30", Config{Subnet: "10.0.0.4/30"}, Pool{
			Sets: []RangeSet{{rng("10.0.0.4/30", "10.0.0.5", "10.0.0.6", "10.0.0.5")}},
		}},
		{"ipv6 defaults", Config{Ranges: [][]RangeConfig{{{Subnet: "fd00:1::/64"}}}}, Pool{
			Sets: []RangeSet{{rng("fd00:1::/64", "fd00:1::1", "fd00:1::ffff:ffff:ffff:ffff", "fd00:1::1")}},
		}},
		{"ipv6 slash 126", Config{Ranges: [][]RangeConfig{{{Subnet: "fd00::/126"}}}}, Pool{
			Sets: []RangeSet{{rng("fd00::/126", "fd00::1", "fd00::3", "fd00::1")}},
		}},
		{"explicit span and gateway", Config{Ranges: [][]RangeConfig{{{
			Subnet: "10.1.0.0/16", RangeStart: "10.1.2.0", RangeEnd: "10.1.2.255", Gateway: "10.1.255.254",
		}}}}, Pool{
			Sets: []RangeSet{{rng("10.1.0.0/16", "10.1.2.0", "10.1.2.255", "10.1.255.254")}},
		}},
		{"ipv4-mapped addresses unmapped", Config{Subnet: "10.0.0.0/24", Gateway: "::ffff:10.0.0.254"}, Pool{
			Sets: []RangeSet{{rng("10.0.0.0/24", "10.0.0.1", "10.0.0.254", "10.0.0.254")}},
		}},
		{"legacy first, then ranges", Config{
			Subnet: "10.0.0.0/24",
			Ranges: [][]RangeConfig{{{Subnet: "10.1.0.0/24"}}, {{Subnet: "fd00::/120"}}},
		}, Pool{Sets: []RangeSet{
			{rng("10.0.0.0/24", "10.0.0.1", "10.0.0.254", "10.0.0.1")},
			{rng("10.1.0.0/24", "10.1.0.1", "10.1.0.254", "10.1.0.1")},
			{rng("fd00::/120", "fd00::1", "fd00::ff", "fd00::1")},
		}}},
		{"several ranges in a set, one subnet split", Config{Ranges: [][]RangeConfig{{
			{Subnet: "10.0.0.0/24", RangeStart: "10.0.0.10", RangeEnd: "10.0.0.19"},
			{Subnet: "10.0.0.0/24", RangeStart: "10.0.0.20", RangeEnd: "10.0.0.29"},
			{Subnet: "10.9.0.0/24"},
		}}}, Pool{Sets: []RangeSet{{
			rng("10.0.0.0/24", "10.0.0.10", "10.0.0.19", "10.0.0.1"),
			rng("10.0.0.0/24", "10.0.0.20", "10.0.0.29", "10.0.0.1"),
			rng("10.9.0.0/24", "10.9.0.1", "10.9.0.254", "10.9.0.1"),
		}}}},
		{"routes and dataDir", Config{
			Subnet:  "10.0.0.0/24",
			DataDir: "/run/nb",
			Routes:  []RouteConfig{{Dst: "0.0.0.0/0"}, {Dst: "192.168.1.7/24", GW: "10.0.0.254"}, {Dst: "::/0", GW: "fd00::1"}},
		}, Pool{
			Sets: []RangeSet{{rng("10.0.0.0/24", "10.0.0.1", "10.0.0.254", "10.0.0.1")}},
			Routes: []Route{
				{Dst: netip.MustParsePrefix("0.0.0.0/0")},
				{Dst: netip.MustParsePrefix("192.168.1.0/24"), GW: netip.MustParseAddr("10.0.0.254")},
				{Dst: netip.MustParsePrefix("::/0"), GW: netip.MustParseAddr("fd00::1")},
			},
			DataDir: "/run/nb",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.Pool()
			if err != nil {
				t.Fatalf("Pool: %v", err)
			}
			if tt.want.DataDir == "" {
				tt.want.DataDir = DefaultDataDir
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("Pool:\n got %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestPoolInvalid(t *testing.T) {
	one := func(rc RangeConfig) Config { return Config{Ranges: [][]RangeConfig{{rc}}} }
	tests := []struct {
		name string
		in   Config
		want []string // every message, in order
	}{
		{"no ranges", Config{Type: "host-local"}, []string{`ipam.ranges: no address ranges configured`}},
		{"subnet not a CIDR", Config{Subnet: "10.0.0.0/33"}, []string{`ipam.subnet "10.0.0.0/33": not a CIDR`}},
		{"legacy start without subnet", Config{RangeStart: "10.0.0.9"}, []string{`ipam.subnet: required`}},
		{"range subnet missing", one(RangeConfig{Gateway: "10.0.0.1"}), []string{`ipam.ranges[0][0].subnet: required`}},
		{"slash 31", Config{Subnet: "10.0.0.0/31"}, []string{`ipam.subnet "10.0.0.0/31": too small to allocate from`}},
		{"slash 32", Config{Subnet: "10.0.0.1/32"}, []string{`ipam.subnet "10.0.0.1/32": too small to allocate from`}},
		{"slash 127", one(RangeConfig{Subnet: "fd00::/127"}), []string{`ipam.ranges[0][0].subnet "fd00::/127": too small to allocate from`}},
		{"ipv4-mapped subnet", Config{Subnet: "::ffff:10.0.0.0/120"}, []string{`ipam.subnet "::ffff:10.0.0.0/120": IPv4-mapped; write it as an IPv4 CIDR`}},
		{"start not an IP", Config{Ranges: [][]RangeConfig{{{Subnet: "10.0.0.0/24", RangeEnd: "10.0.0.99"}, {Subnet: "10.0.0.0/24", RangeStart: "10.0.0.300"}}}},
			[]string{`ipam.ranges[0][1].rangeStart "10.0.0.300": not an IP`}},
		{"start with zone", one(RangeConfig{Subnet: "fe80::/64", RangeStart: "fe80::5%eth0"}),
			[]string{`ipam.ranges[0][0].rangeStart "fe80::5%eth0": not an IP`}},
		{"start outside", one(RangeConfig{Subnet: "10.0.0.0/24", RangeStart: "10.0.1.1"}),
			[]string{`ipam.ranges[0][0].rangeStart "10.0.1.1": outside subnet 10.0.0.0/24`}},
		{"end outside", Config{Subnet: "10.0.0.0/24", RangeEnd: "10.0.1.1"}, []string{`ipam.rangeEnd "10.0.1.1": outside subnet 10.0.0.0/24`}},
		{"gateway outside", Config{Ranges: [][]RangeConfig{{{Subnet: "10.0.0.0/24"}}, {{Subnet: "10.1.0.0/16", Gateway: "10.9.0.1"}}}},
			[]string{`ipam.ranges[1][0].gateway "10.9.0.1": outside subnet 10.1.0.0/16`}},
		{"gateway other family", Config{Subnet: "10.0.0.0/24", Gateway: "fd00::1"}, []string{`ipam.gateway "fd00::1": outside subnet 10.0.0.0/24`}},
		{"gateway not an IP", Config{Subnet: "10.0.0.0/24", Gateway: "gw"}, []string{`ipam.gateway "gw": not an IP`}},
		{"start after end", Config{Subnet: "10.0.0.0/24", RangeStart: "10.0.0.200", RangeEnd: "10.0.0.100"},
			[]string{`ipam.rangeStart "10.0.0.200": after rangeEnd 10.0.0.100`}},
		{"start is network address", Config{Subnet: "10.0.0.0/24", RangeStart: "10.0.0.0"},
			[]string{`ipam.rangeStart "10.0.0.0": the network address of 10.0.0.0/24`}},
		{"end is broadcast address", Config{Subnet: "10.0.0.0/24", RangeEnd: "10.0.0.255"},
			[]string{`ipam.rangeEnd "10.0.0.255": the broadcast address of 10.0.0.0/24`}},
		{"empty range set", Config{Ranges: [][]RangeConfig{{{Subnet: "10.0.0.0/24"}}, {}}}, []string{`ipam.ranges[1]: empty range set`}},
		{"mixed families in a set", Config{Ranges: [][]RangeConfig{{{Subnet: "10.0.0.0/24"}, {Subnet: "fd00::/64"}}}},
			[]string{`ipam.ranges[0][1].subnet "fd00::/64": address family differs from ipam.ranges[0][0].subnet 10.0.0.0/24`}},
		{"overlap in a set", Config{Ranges: [][]RangeConfig{{
			{Subnet: "10.0.0.0/24", RangeStart: "10.0.0.10", RangeEnd: "10.0.0.20"},
			{Subnet: "10.0.0.0/16", RangeStart: "10.0.0.20", RangeEnd: "10.0.0.30"},
		}}}, []string{`ipam.ranges[0][1].subnet "10.0.0.0/16": range 10.0.0.20-10.0.0.30 overlaps ipam.ranges[0][0] range 10.0.0.10-10.0.0.20`}},
		{"sets overlap", Config{Subnet: "10.0.0.0/16", Ranges: [][]RangeConfig{{{Subnet: "10.0.5.0/24"}}, {{Subnet: "10.0.0.0/8"}}}},
			[]string{`ipam.ranges[0]: overlaps ipam.subnet`, `ipam.ranges[1]: overlaps ipam.subnet`, `ipam.ranges[1]: overlaps ipam.ranges[0]`}},
		{"route dst", Config{Subnet: "10.0.0.0/24", Routes: []RouteConfig{{Dst: "0.0.0.0"}}}, []string{`ipam.routes[0].dst "0.0.0.0": not a CIDR`}},
		{"route gw", Config{Subnet: "10.0.0.0/24", Routes: []RouteConfig{{Dst: "0.0.0.0/0"}, {Dst: "0.0.0.0/0", GW: "x"}}},
			[]string{`ipam.routes[1].gw "x": not an IP`}},
		{"route gw family", Config{Subnet: "10.0.0.0/24", Routes: []RouteConfig{{Dst: "::/0", GW: "10.0.0.1"}}},
			[]string{`ipam.routes[0].gw "10.0.0.1": address family differs from dst ::/0`}},
		{"every problem at once", Config{
			Subnet:     "10.0.0.0/33",
			Ranges:     [][]RangeConfig{{{Subnet: "10.1.0.0/16", RangeStart: "10.2.0.1", RangeEnd: "nope", Gateway: "10.9.0.1"}}},
			Routes:     []RouteConfig{{Dst: "bad"}},
			ResolvConf: "/nonexistent/resolv.conf",
		}, []string{
			`ipam.subnet "10.0.0.0/33": not a CIDR`,
			`ipam.ranges[0][0].gateway "10.9.0.1": outside subnet 10.1.0.0/16`,
			`ipam.ranges[0][0].rangeStart "10.2.0.1": outside subnet 10.1.0.0/16`,
			`ipam.ranges[0][0].rangeEnd "nope": not an IP`,
			`ipam.routes[0].dst "bad": not a CIDR`,
			`ipam.resolvConf "/nonexistent/resolv.conf": open /nonexistent/resolv.conf: no such file or directory`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tt.in.Pool()
			if p != nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Pool = %v, %v; want nil and an error wrapping ErrInvalid", p, err)
			}
			if got := errLines(err); !slices.Equal(got, tt.want) {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestPoolResolvConf(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	content := "# generated\n; also a comment\nnameserver 10.0.0.53\n  nameserver   fd00::53  \nnameserver\n" +
		"domain cluster.local\nsearch a.svc b.svc\nsearch c\noptions ndots:5 edns0\nsortlist 10.0.0.0\n"
	writeTestFile(t, path, content)
	p := mustPool(t, Config{Subnet: "10.0.0.0/24", ResolvConf: path})
	want := DNS{
		Nameservers: []string{"10.0.0.53", "fd00::53"},
		Domain:      "cluster.local",
		Search:      []string{"a.svc", "b.svc", "c"},
		Options:     []string{"ndots:5", "edns0"},
	}
	if !reflect.DeepEqual(p.DNS, want) {
		t.Errorf("DNS = %+v, want %+v", p.DNS, want)
	}
	if p := mustPool(t, Config{Subnet: "10.0.0.0/24"}); !reflect.DeepEqual(p.DNS, DNS{}) {
		t.Errorf("DNS without resolvConf = %+v, want zero", p.DNS)
	}
	_, err := (&Config{Subnet: "10.0.0.0/24", ResolvConf: filepath.Join(t.TempDir(), "missing")}).Pool()
	if !errors.Is(err, ErrInvalid) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing resolvConf: %v; want ErrInvalid and fs.ErrNotExist", err)
	}
}

func TestParseRequested(t *testing.T) {
	tests := []struct{ in, want string }{
		{"10.0.0.5", "10.0.0.5"},
		{"10.0.0.5/24", "10.0.0.5"},
		{"fd00::5", "fd00::5"},
		{"fd00::5/64", "fd00::5"},
		{"::ffff:10.0.0.5", "10.0.0.5"},
		{"10.0.0.300", ""},
		{"10.0.0.5/33", ""},
		{"fe80::1%eth0", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRequested(tt.in)
			if tt.want == "" {
				if !errors.Is(err, ErrInvalid) || got.IsValid() {
					t.Fatalf("ParseRequested = %v, %v; want an ErrInvalid error", got, err)
				}
				return
			}
			if err != nil || got != netip.MustParseAddr(tt.want) {
				t.Errorf("ParseRequested = %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}
