package rules

import (
	"net/netip"
	"reflect"
	"testing"
)

// Chain names of network "mynet": the first 10 hex digits of
// sha256("mynet"), computed with sha256sum, not with the code under test.
const (
	myPost = "NB-POST-11c844f95e"
	myFwd  = "NB-FWD-11c844f95e"
	myCmt  = `-m comment --comment "nodebridge: mynet"`
)

func TestRules(t *testing.T) {
	v4 := Ruleset{Chains: []Chain{
		{Table: "nat", Name: myPost, Parent: "POSTROUTING",
			Jump: "-A POSTROUTING " + myCmt + " -j " + myPost,
			Rules: []string{
				"-A " + myPost + " -d 10.22.0.0/16 " + myCmt + " -j RETURN",
				"-A " + myPost + " -d 224.0.0.0/4 " + myCmt + " -j RETURN",
				"-A " + myPost + " -s 10.22.0.0/16 " + myCmt + " -j MASQUERADE",
			}},
		{Table: "filter", Name: myFwd, Parent: "FORWARD", Insert: true,
			Jump: "-A FORWARD " + myCmt + " -j " + myFwd,
			Rules: []string{
				"-A " + myFwd + " -s 10.22.0.0/16 " + myCmt + " -j ACCEPT",
				"-A " + myFwd + " -d 10.22.0.0/16 " + myCmt + " -j ACCEPT",
			}},
	}}
	v6 := Ruleset{IPv6: true, Chains: []Chain{
		{Table: "nat", Name: myPost, Parent: "POSTROUTING",
			Jump: "-A POSTROUTING " + myCmt + " -j " + myPost,
			Rules: []string{
				"-A " + myPost + " -d fd00:22::/64 " + myCmt + " -j RETURN",
				"-A " + myPost + " -d ff00::/8 " + myCmt + " -j RETURN",
				"-A " + myPost + " -s fd00:22::/64 " + myCmt + " -j MASQUERADE",
			}},
		{Table: "filter", Name: myFwd, Parent: "FORWARD", Insert: true,
			Jump: "-A FORWARD " + myCmt + " -j " + myFwd,
			Rules: []string{
				"-A " + myFwd + " -s fd00:22::/64 " + myCmt + " -j ACCEPT",
				"-A " + myFwd + " -d fd00:22::/64 " + myCmt + " -j ACCEPT",
			}},
	}}
	twoV4 := Ruleset{Chains: []Chain{
		{Table: "nat", Name: myPost, Parent: "POSTROUTING",
			Jump: "-A POSTROUTING " + myCmt + " -j " + myPost,
			Rules: []string{
				"-A " + myPost + " -d 10.22.0.0/16 " + myCmt + " -j RETURN",
				"-A " + myPost + " -d 10.99.1.0/24 " + myCmt + " -j RETURN",
				"-A " + myPost + " -d 224.0.0.0/4 " + myCmt + " -j RETURN",
				"-A " + myPost + " -s 10.22.0.0/16 " + myCmt + " -j MASQUERADE",
				"-A " + myPost + " -s 10.99.1.0/24 " + myCmt + " -j MASQUERADE",
			}},
		{Table: "filter", Name: myFwd, Parent: "FORWARD", Insert: true,
			Jump: "-A FORWARD " + myCmt + " -j " + myFwd,
			Rules: []string{
				"-A " + myFwd + " -s 10.22.0.0/16 " + myCmt + " -j ACCEPT",
				"-A " + myFwd + " -d 10.22.0.0/16 " + myCmt + " -j ACCEPT",
				"-A " + myFwd + " -s 10.99.1.0/24 " + myCmt + " -j ACCEPT",
				"-A " + myFwd + " -d 10.99.1.0/24 " + myCmt + " -j ACCEPT",
			}},
	}}
	for _, tc := range []struct {
		name    string
		subnets []string
		want    []Ruleset
	}{
		{"ipv4", []string{"10.22.0.0/16"}, []Ruleset{v4}},
		{"ipv4 unmasked", []string{"10.22.3.4/16"}, []Ruleset{v4}},
		{"ipv6", []string{"fd00:22::/64"}, []Ruleset{v6}},
		{"dual stack, IPv4 first", []string{"fd00:22::/64", "10.22.0.0/16"}, []Ruleset{v4, v6}},
		{"two subnets", []string{"10.22.0.0/16", "10.99.1.0/24"}, []Ruleset{twoV4}},
		{"no subnets", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Rules(Network{Name: "mynet", Subnets: prefixes(tc.subnets...)})
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Rules:\ngot  %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func TestRulesSkipInvalidPrefix(t *testing.T) {
	got := Rules(Network{Name: "mynet", Subnets: []netip.Prefix{{}}})
	if got != nil {
		t.Errorf("Rules with only a zero prefix: %#v, want none", got)
	}
}

func TestRulesQuoteComment(t *testing.T) {
	// Callers validate names, but a quote or backslash must still not break
	// out of the restore argument; escaped as iptables-save prints them.
	rs := Rules(Network{Name: `a"b\c`, Subnets: prefixes("10.0.0.0/8")})
	want := `-A POSTROUTING -m comment --comment "nodebridge: a\"b\\c" -j ` + rs[0].Chains[0].Name
	if got := rs[0].Chains[0].Jump; got != want {
		t.Errorf("jump %q, want %q", got, want)
	}
	if f := fields(want); f[5] != `nodebridge: a"b\c` {
		t.Errorf("fields read the comment back as %q", f[5])
	}
}

// prefixes parses CIDR strings for a test table.
func prefixes(cidrs ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, c := range cidrs {
		out = append(out, netip.MustParsePrefix(c))
	}
	return out
}
