package rules

import (
	"net/netip"
	"slices"
	"strings"
)

// Chain is one of a network's chains together with the jump that enters it
// from a built-in chain. Rules are kept as iptables-save prints them, so the
// rendered and the saved forms compare as plain strings.
type Chain struct {
	Table  string   // "nat" or "filter"
	Name   string   // NB-POST-<hash> or NB-FWD-<hash>
	Parent string   // built-in chain holding the jump: POSTROUTING or FORWARD
	Jump   string   // the jump as iptables-save prints it: "-A POSTROUTING ... -j NB-POST-<hash>"
	Rules  []string // the chain's rules as iptables-save prints them, in order
	Insert bool     // the jump goes near the top of Parent (see insertAt) rather than the end
}

// Ruleset is a network's chains in one address family: nat, then filter.
type Ruleset struct {
	IPv6   bool
	Chains []Chain
	// Absent are chains of the network that must not exist, nor any jump
	// into them: the nftables backend keeps only the FORWARD chain here,
	// and only where iptables would drop pod traffic (see crossbackend.go).
	Absent []Chain
}

// Rules renders n's rules for each family n has subnets of, IPv4 first.
func Rules(n Network) []Ruleset {
	var out []Ruleset
	for _, v6 := range []bool{false, true} {
		if subnets := familySubnets(n.Subnets, v6); len(subnets) > 0 {
			out = append(out, render(n.Name, v6, subnets, exclusions(n, v6)))
		}
	}
	return out
}

// render builds the ruleset of one family. With no subnets it still names
// the chains and jumps, which is all DeleteNetwork needs. Traffic to the
// prefixes of keep is not masqueraded.
func render(name string, v6 bool, subnets, keep []netip.Prefix) Ruleset {
	hash := chainHash(name)
	comment := commentMatch(name)
	multicast := netip.MustParsePrefix("224.0.0.0/4")
	if v6 {
		multicast = netip.MustParsePrefix("ff00::/8")
	}
	post := Chain{Table: "nat", Name: "NB-POST-" + hash, Parent: "POSTROUTING"}
	fwd := Chain{Table: "filter", Name: "NB-FWD-" + hash, Parent: "FORWARD", Insert: true}
	rule := func(c *Chain, match, target string) {
		c.Rules = append(c.Rules, "-A "+c.Name+" "+match+comment+" -j "+target)
	}
	// Traffic to the network's own subnets, between two of them included,
	// keeps its source address; so do multicast and, routed to other nodes
	// without NAT, traffic to the prefixes of keep.
	for _, p := range slices.Concat(subnets, []netip.Prefix{multicast}, keep) {
		rule(&post, addrMatch("-d", p), "RETURN")
	}
	for _, p := range subnets {
		rule(&post, addrMatch("-s", p), "MASQUERADE")
	}
	// Both directions are accepted so pod traffic survives a FORWARD policy
	// of DROP, replies and bridged pod-to-pod traffic (br_netfilter) included.
	for _, p := range subnets {
		rule(&fwd, addrMatch("-s", p), "ACCEPT")
		rule(&fwd, addrMatch("-d", p), "ACCEPT")
	}
	post.Jump = "-A " + post.Parent + " " + comment + " -j " + post.Name
	fwd.Jump = "-A " + fwd.Parent + " " + comment + " -j " + fwd.Name
	return Ruleset{IPv6: v6, Chains: []Chain{post, fwd}}
}

// addrMatch is the match of flag ("-s" or "-d") against p with a trailing
// space, as iptables-save prints it: nothing for a /0, which matches every
// address of the family and which iptables-save leaves out.
func addrMatch(flag string, p netip.Prefix) string {
	if p.Bits() == 0 {
		return ""
	}
	return flag + " " + p.String() + " "
}

// commentMatch is the match every rule of the network carries. Rules put it
// just before the target because that is where iptables-save prints it.
func commentMatch(name string) string {
	return `-m comment --comment "` + quote("nodebridge: "+name) + `"`
}

// quote escapes a string for a double-quoted restore argument the way
// iptables-save does, so the escaped form is also the printed form.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return r.Replace(s)
}
