package rules

import (
	"bytes"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// nftState is what one read shows of our table: its chains by name, and
// the rules of those of the network being compared.
type nftState struct {
	chains map[string]*nftables.Chain
	rules  map[string][]*nftables.Rule
}

// nftDifferences lists every way st departs from want for network, one
// finding (an ErrMissing) each. None means nothing to write.
func nftDifferences(want []nftChain, st nftState, network string) []error {
	var errs []error
	comment := nftComment(network)
	for _, w := range want {
		where := fmt.Sprintf("nftables chain inet %s %s of network %q: ", NFTTable, w.chain.Name, network)
		got, ok := st.chains[w.chain.Name]
		if !ok {
			errs = append(errs, finding(where+"chain missing"))
			continue
		}
		if have, want := ChainHeader(got), ChainHeader(w.chain); have != want {
			errs = append(errs, finding(where+have+", want "+want))
		}
		errs = append(errs, nftRuleDifferences(w.rules, st.rules[w.chain.Name], comment, where)...)
	}
	return errs
}

// nftRuleDifferences compares a chain's rules position by position.
func nftRuleDifferences(want []nftRule, got []*nftables.Rule, comment []byte, where string) []error {
	var errs []error
	for i := range max(len(want), len(got)) {
		switch {
		case i >= len(got):
			errs = append(errs, finding(fmt.Sprintf("%smissing rule %d %q", where, i+1, want[i].text)))
		case i >= len(want):
			errs = append(errs, finding(fmt.Sprintf("%sunexpected rule %d (handle %d)", where, i+1, got[i].Handle)))
		case !bytes.Equal(got[i].UserData, comment):
			errs = append(errs, finding(fmt.Sprintf("%srule %d %q: comment %q differs", where, i+1, want[i].text, got[i].UserData)))
		case !SameExprs(nftables.TableFamilyINet, got[i].Exprs, want[i].exprs):
			errs = append(errs, finding(fmt.Sprintf("%srule %d differs from %q", where, i+1, want[i].text)))
		}
	}
	return errs
}

// nftChainDiffers reports whether the chain as read needs rewriting.
func nftChainDiffers(w nftChain, st nftState, comment []byte) bool {
	got, ok := st.chains[w.chain.Name]
	return !ok || ChainHeader(got) != ChainHeader(w.chain) ||
		len(nftRuleDifferences(w.rules, st.rules[w.chain.Name], comment, "")) > 0
}

// ChainHeader describes what makes a base chain what it is, as nft prints
// it; a chain without a policy attribute has the kernel's default, accept.
// spoofchk shares it.
func ChainHeader(c *nftables.Chain) string {
	hook, prio := "none", "none"
	if c.Hooknum != nil {
		hook = fmt.Sprint(*c.Hooknum)
		switch *c.Hooknum {
		case unix.NF_INET_POST_ROUTING:
			hook = "postrouting"
		case unix.NF_INET_FORWARD:
			hook = "forward"
		}
	}
	if c.Priority != nil {
		prio = fmt.Sprint(*c.Priority)
	}
	policy := "accept"
	if c.Policy != nil && *c.Policy != nftables.ChainPolicyAccept {
		policy = "drop"
	}
	return fmt.Sprintf("type %s hook %s priority %s; policy %s", c.Type, hook, prio, policy)
}

// SameExprs compares expressions in their wire form in family, which is
// what the kernel keeps, with counter values zeroed so that traffic counted
// since the rule was written does not make it differ. spoofchk shares it.
func SameExprs(family nftables.TableFamily, got, want []expr.Any) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g, gerr := exprBytes(family, got[i])
		w, werr := exprBytes(family, want[i])
		if gerr != nil || werr != nil || !bytes.Equal(g, w) {
			return false
		}
	}
	return true
}

// exprBytes is e's wire form in family; a counter's values are left out.
func exprBytes(family nftables.TableFamily, e expr.Any) ([]byte, error) {
	if _, ok := e.(*expr.Counter); ok {
		e = &expr.Counter{}
	}
	return expr.Marshal(byte(family), e)
}
