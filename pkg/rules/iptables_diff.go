package rules

import (
	"fmt"
	"slices"
	"strings"
)

// differences lists every way st departs from rs for network, one finding
// each, naming the family, table and chain. None means nothing to write.
func differences(rs Ruleset, st saved, network string) []error {
	var errs []error
	for _, c := range rs.Chains {
		errs = append(errs, chainDifferences(c, st[c.Table], rs.IPv6, network)...)
	}
	for _, c := range rs.Absent {
		errs = append(errs, leftovers(c, st[c.Table], rs.IPv6, network)...)
	}
	return errs
}

// leftovers reports c and the jumps into it, which must not exist.
func leftovers(c Chain, t *savedTable, v6 bool, network string) []error {
	var errs []error
	add := func(chain, what string) {
		errs = append(errs, finding(fmt.Sprintf("%s %s chain %s of network %q: %s", familyName(v6), c.Table, chain, network, what)))
	}
	if t.has(c.Name) {
		add(c.Name, "unexpected chain")
	}
	for _, j := range t.jumpsTo(c.Name) {
		add(ruleChain(j), fmt.Sprintf("unexpected jump %q", shortRule(j, network)))
	}
	return errs
}

// chainDifferences compares one chain and the jumps into it.
func chainDifferences(c Chain, t *savedTable, v6 bool, network string) []error {
	short := func(rule string) string { return shortRule(rule, network) }
	var errs []error
	add := func(chain, format string, args ...any) {
		where := fmt.Sprintf("%s %s chain %s of network %q: ", familyName(v6), c.Table, chain, network)
		errs = append(errs, finding(where+fmt.Sprintf(format, args...)))
	}
	if !t.has(c.Name) {
		add(c.Name, "chain missing")
	} else if got := t.chainRules(c.Name); !slices.Equal(got, c.Rules) {
		missing, extra := subtract(c.Rules, got), subtract(got, c.Rules)
		for _, r := range missing {
			add(c.Name, "missing rule %q", short(r))
		}
		for _, r := range extra {
			add(c.Name, "unexpected rule %q", short(r))
		}
		if len(missing) == 0 && len(extra) == 0 {
			add(c.Name, "rules out of order")
		}
	}
	exact := 0
	for _, j := range t.jumpsTo(c.Name) {
		if j == c.Jump {
			exact++
		} else {
			add(ruleChain(j), "unexpected jump %q", short(j))
		}
	}
	switch {
	case exact == 0:
		add(c.Parent, "missing jump %q", short(c.Jump))
	case exact > 1:
		add(c.Parent, "jump %q present %d times, want once", short(c.Jump), exact)
	case c.Insert && !belowKubeProxy(c, t):
		add(c.Parent, "jump %q above kube-proxy's jumps, which must see pod traffic first", short(c.Jump))
	}
	return errs
}

// subtract returns the elements of a not matched one-for-one in b.
func subtract(a, b []string) []string {
	left := map[string]int{}
	for _, s := range b {
		left[s]++
	}
	var out []string
	for _, s := range a {
		if left[s] > 0 {
			left[s]--
			continue
		}
		out = append(out, s)
	}
	return out
}

// shortRule drops the "-A CHAIN" prefix and the network's own comment,
// which the message already names, leaving the part a reader compares.
func shortRule(rule, network string) string {
	if f := fields(rule); len(f) > 2 && f[0] == "-A" {
		rule = strings.TrimPrefix(rule, "-A "+f[1]+" ")
	}
	return strings.Replace(rule, commentMatch(network)+" ", "", 1)
}

// ruleChain returns the chain a printed "-A CHAIN ..." rule belongs to.
func ruleChain(rule string) string {
	if f := fields(rule); len(f) > 1 {
		return f[1]
	}
	return ""
}

// familyName is the tool prefix of a family, which is also how messages name it.
func familyName(v6 bool) string {
	if v6 {
		return "ip6tables"
	}
	return "iptables"
}
