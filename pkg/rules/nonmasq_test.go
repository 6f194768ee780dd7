package rules

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables/expr"
)

// The contract's example: the cluster's pod prefixes of both families.
var cluster = prefixes("10.244.0.0/16", "fd00:10:244::/56")

func TestExclusions(t *testing.T) {
	for _, tc := range []struct {
		name         string
		subnets      []string
		keep         []string
		want4, want6 []string
	}{
		{"one per family", []string{"10.244.1.0/24", "fd00:10:244:1::/64"}, []string{"10.244.0.0/16", "fd00:10:244::/56"},
			[]string{"10.244.0.0/16"}, []string{"fd00:10:244::/56"}},
		{"masked, repeats and own subnets dropped", []string{"10.244.1.0/24"},
			[]string{"10.244.9.9/16", "10.244.1.0/24", "10.244.0.0/16", "198.18.1.0/24"},
			[]string{"10.244.0.0/16", "198.18.1.0/24"}, nil},
		{"none", []string{"10.244.1.0/24"}, nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := Network{Name: "mynet", Subnets: prefixes(tc.subnets...), NonMasquerade: prefixes(tc.keep...)}
			if got := exclusions(n, false); !slices.Equal(got, prefixes(tc.want4...)) {
				t.Errorf("IPv4 exclusions %v, want %v", got, tc.want4)
			}
			if got := exclusions(n, true); !slices.Equal(got, prefixes(tc.want6...)) {
				t.Errorf("IPv6 exclusions %v, want %v", got, tc.want6)
			}
		})
	}
}

// TestRulesNonMasquerade: a RETURN per excluded prefix of the family, after
// the network's own and multicast, before the MASQUERADE; FORWARD is as
// without them.
func TestRulesNonMasquerade(t *testing.T) {
	n := Network{Name: "mynet", Subnets: prefixes("10.22.0.0/16", "fd00:22::/64"), NonMasquerade: cluster}
	ret := func(dst string) string { return "-A " + myPost + " -d " + dst + " " + myCmt + " -j RETURN" }
	masq := func(src string) string { return "-A " + myPost + " -s " + src + " " + myCmt + " -j MASQUERADE" }
	want := [][]string{
		{ret("10.22.0.0/16"), ret("224.0.0.0/4"), ret("10.244.0.0/16"), masq("10.22.0.0/16")},
		{ret("fd00:22::/64"), ret("ff00::/8"), ret("fd00:10:244::/56"), masq("fd00:22::/64")},
	}
	plain := Rules(Network{Name: n.Name, Subnets: n.Subnets})
	got := Rules(n)
	if len(got) != 2 {
		t.Fatalf("%d rulesets, want 2", len(got))
	}
	for i, rs := range got {
		if !slices.Equal(rs.Chains[0].Rules, want[i]) {
			t.Errorf("%s nat rules:\ngot  %q\nwant %q", familyName(rs.IPv6), rs.Chains[0].Rules, want[i])
		}
		if !reflect.DeepEqual(rs.Chains[1], plain[i].Chains[1]) {
			t.Errorf("%s filter chain changed with exclusions: %#v", familyName(rs.IPv6), rs.Chains[1])
		}
	}
}

func TestNFTChainsNonMasquerade(t *testing.T) {
	n := Network{Name: "mynet", Subnets: prefixes("10.22.0.0/16", "fd00:22::/64"),
		NonMasquerade: append(prefixes("198.18.1.7/32"), cluster...)}
	want := map[string][]string{
		"post-11c844f95e": {"ip daddr 10.22.0.0/16 return", "ip daddr 224.0.0.0/4 return",
			"ip daddr 198.18.1.7 return", "ip daddr 10.244.0.0/16 return", "ip saddr 10.22.0.0/16 masquerade",
			"ip6 daddr fd00:22::/64 return", "ip6 daddr ff00::/8 return", "ip6 daddr fd00:10:244::/56 return",
			"ip6 saddr fd00:22::/64 masquerade"},
		"fwd-11c844f95e": {"ip saddr 10.22.0.0/16 accept", "ip daddr 10.22.0.0/16 accept",
			"ip6 saddr fd00:22::/64 accept", "ip6 daddr fd00:22::/64 accept"},
	}
	if got := nftTexts(nftChains(n)); !reflect.DeepEqual(got, want) {
		t.Errorf("rules:\ngot  %q\nwant %q", got, want)
	}
	// Exclusions of a family without subnets have nothing to exclude from.
	v4only := nftTexts(nftChains(Network{Name: "mynet", Subnets: prefixes("10.22.0.0/16"), NonMasquerade: cluster}))
	if slices.Contains(v4only["post-11c844f95e"], "ip6 daddr fd00:10:244::/56 return") {
		t.Errorf("IPv4-only network got an IPv6 exclusion: %q", v4only)
	}
}

// TestRulesNonMasqueradeAll: a /0 exclusion is a RETURN without -d, as
// iptables-save prints it, so the saved rules compare equal to the
// rendered ones and an Ensure does not rewrite them for ever.
func TestRulesNonMasqueradeAll(t *testing.T) {
	n := Network{Name: "mynet", Subnets: prefixes("10.22.0.0/16", "fd00:22::/64"), NonMasquerade: prefixes("0.0.0.0/0", "::/0")}
	all := "-A " + myPost + " " + myCmt + " -j RETURN"
	for _, rs := range Rules(n) {
		if !slices.Contains(rs.Chains[0].Rules, all) {
			t.Errorf("%s nat rules %q lack %q", familyName(rs.IPv6), rs.Chains[0].Rules, all)
		}
		if diff := differences(rs, parseSave([]byte(saveText(rs))), n.Name); len(diff) > 0 {
			t.Errorf("%s rules differ from themselves as iptables-save prints them: %v", familyName(rs.IPv6), diff)
		}
	}
}

// saveText is rs as iptables-save prints it when in place.
func saveText(rs Ruleset) string {
	var b strings.Builder
	for _, c := range rs.Chains {
		b.WriteString("*" + c.Table + "\n:" + c.Parent + " ACCEPT [0:0]\n:" + c.Name + " - [0:0]\n" + c.Jump + "\n")
		for _, r := range c.Rules {
			b.WriteString(r + "\n")
		}
		b.WriteString("COMMIT\n")
	}
	return b.String()
}

// TestNFTChainsNonMasqueradeAll: a /0 exclusion matches the family alone,
// with no address load, as nft has "meta nfproto ipv4".
func TestNFTChainsNonMasqueradeAll(t *testing.T) {
	n := Network{Name: "mynet", Subnets: prefixes("10.22.0.0/16", "fd00:22::/64"), NonMasquerade: prefixes("0.0.0.0/0", "::/0")}
	post := nftChains(n)[0]
	var texts []string
	for _, r := range post.rules {
		texts = append(texts, r.text)
		if strings.HasPrefix(r.text, "meta nfproto") {
			for _, e := range r.exprs {
				if _, ok := e.(*expr.Payload); ok {
					t.Errorf("rule %q loads an address", r.text)
				}
			}
		}
	}
	for _, want := range []string{"meta nfproto ipv4 return", "meta nfproto ipv6 return"} {
		if !slices.Contains(texts, want) {
			t.Errorf("nat rules %q lack %q", texts, want)
		}
	}
}
