package rules

import (
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// nftTexts returns each chain's name and its rules as nft prints them.
func nftTexts(chains []nftChain) map[string][]string {
	out := map[string][]string{}
	for _, c := range chains {
		out[c.chain.Name] = []string{}
		for _, r := range c.rules {
			out[c.chain.Name] = append(out[c.chain.Name], r.text)
		}
	}
	return out
}

func TestNFTChains(t *testing.T) {
	// "11c844f95e" is sha256("mynet") cut to 10 hex digits, as in rules_test.go.
	tests := []struct {
		name    string
		subnets []string
		want    map[string][]string
	}{
		{"ipv4", []string{"10.22.0.0/16"}, map[string][]string{
			"post-11c844f95e": {"ip daddr 10.22.0.0/16 return", "ip daddr 224.0.0.0/4 return", "ip saddr 10.22.0.0/16 masquerade"},
			"fwd-11c844f95e":  {"ip saddr 10.22.0.0/16 accept", "ip daddr 10.22.0.0/16 accept"},
		}},
		{"dual, IPv4 first, unmasked input", []string{"fd00:22::1/64", "10.22.0.0/16", "10.30.1.1/32"}, map[string][]string{
			"post-11c844f95e": {"ip daddr 10.22.0.0/16 return", "ip daddr 10.30.1.1 return", "ip daddr 224.0.0.0/4 return",
				"ip saddr 10.22.0.0/16 masquerade", "ip saddr 10.30.1.1 masquerade",
				"ip6 daddr fd00:22::/64 return", "ip6 daddr ff00::/8 return", "ip6 saddr fd00:22::/64 masquerade"},
			"fwd-11c844f95e": {"ip saddr 10.22.0.0/16 accept", "ip daddr 10.22.0.0/16 accept",
				"ip saddr 10.30.1.1 accept", "ip daddr 10.30.1.1 accept",
				"ip6 saddr fd00:22::/64 accept", "ip6 daddr fd00:22::/64 accept"},
		}},
		{"no subnets: names only", nil, map[string][]string{"post-11c844f95e": {}, "fwd-11c844f95e": {}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := nftChains(Network{Name: "mynet", Subnets: prefixes(tt.subnets...)})
			if texts := nftTexts(got); !reflect.DeepEqual(texts, tt.want) {
				t.Errorf("rules:\ngot  %q\nwant %q", texts, tt.want)
			}
			if len(got) != 2 {
				t.Fatalf("%d chains, want 2", len(got))
			}
			post, fwd := got[0].chain, got[1].chain
			if post.Type != nftables.ChainTypeNAT || *post.Hooknum != unix.NF_INET_POST_ROUTING || *post.Priority != 100 {
				t.Errorf("post chain: type %s hook %d priority %d, want nat postrouting 100", post.Type, *post.Hooknum, *post.Priority)
			}
			if fwd.Type != nftables.ChainTypeFilter || *fwd.Hooknum != unix.NF_INET_FORWARD || *fwd.Priority != 0 {
				t.Errorf("fwd chain: type %s hook %d priority %d, want filter forward 0", fwd.Type, *fwd.Hooknum, *fwd.Priority)
			}
			for _, c := range []*nftables.Chain{post, fwd} {
				if c.Table.Name != "nodebridge" || c.Table.Family != nftables.TableFamilyINet || c.Policy != nil {
					t.Errorf("chain %s: table %s family %d policy %v, want inet nodebridge, default policy", c.Name, c.Table.Name, c.Table.Family, c.Policy)
				}
			}
		})
	}
}

// TestPrefixRule pins the expressions, which is what the kernel runs: the
// family guard, the header offset of the address, the mask and the value.
func TestPrefixRule(t *testing.T) {
	accept := &expr.Verdict{Kind: expr.VerdictAccept}
	guard := func(proto byte) []expr.Any {
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		}
	}
	load := func(offset, size uint32) expr.Any {
		return &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: size}
	}
	mask := func(m ...byte) expr.Any {
		return &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: uint32(len(m)), Mask: m, Xor: make([]byte, len(m))}
	}
	eq := func(b ...byte) expr.Any { return &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b} }
	v6net := []byte{0xfd, 0, 0, 0x22, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	tests := []struct {
		prefix, field string
		want          []expr.Any
	}{
		{"10.22.0.0/16", "saddr", slices.Concat(guard(unix.NFPROTO_IPV4),
			[]expr.Any{load(12, 4), mask(0xff, 0xff, 0, 0), eq(10, 22, 0, 0), accept})},
		{"224.0.0.0/4", "daddr", slices.Concat(guard(unix.NFPROTO_IPV4),
			[]expr.Any{load(16, 4), mask(0xf0, 0, 0, 0), eq(224, 0, 0, 0), accept})},
		{"10.30.1.1/32", "daddr", slices.Concat(guard(unix.NFPROTO_IPV4),
			[]expr.Any{load(16, 4), eq(10, 30, 1, 1), accept})},
		{"fd00:22::/33", "saddr", slices.Concat(guard(unix.NFPROTO_IPV6),
			[]expr.Any{load(8, 16), mask(0xff, 0xff, 0xff, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), eq(v6net...), accept})},
		{"fd00:22::/64", "daddr", slices.Concat(guard(unix.NFPROTO_IPV6),
			[]expr.Any{load(24, 16), mask(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0), eq(v6net...), accept})},
	}
	for _, tt := range tests {
		t.Run(tt.field+" "+tt.prefix, func(t *testing.T) {
			got := prefixRule(netip.MustParsePrefix(tt.prefix), tt.field, "accept", accept)
			if !reflect.DeepEqual(got.exprs, tt.want) {
				t.Errorf("exprs:\ngot  %#v\nwant %#v", got.exprs, tt.want)
			}
		})
	}
}

func TestPrefixMask(t *testing.T) {
	tests := []struct {
		bits, size int
		want       []byte
	}{
		{0, 4, []byte{0, 0, 0, 0}},
		{9, 4, []byte{0xff, 0x80, 0, 0}},
		{32, 4, []byte{0xff, 0xff, 0xff, 0xff}},
		{63, 16, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 0, 0, 0, 0, 0}},
	}
	for _, tt := range tests {
		if got := prefixMask(tt.bits, tt.size); !slices.Equal(got, tt.want) {
			t.Errorf("prefixMask(%d, %d) = % x, want % x", tt.bits, tt.size, got, tt.want)
		}
	}
}

func TestNFTComment(t *testing.T) {
	// TLV: type 0 (comment), length including the NUL, the text, NUL.
	want := append([]byte{0, 18}, "nodebridge: mynet\x00"...)
	if got := nftComment("mynet"); !slices.Equal(got, want) {
		t.Errorf("nftComment(mynet) = %q, want %q", got, want)
	}
	long := nftComment(string(make([]byte, 300)))
	if int(long[1]) != len(long)-2 || len(long) > 255 {
		t.Errorf("nftComment of a 300-byte name: length byte %d for %d bytes of value", long[1], len(long)-2)
	}
}
