package rules

import (
	"slices"
	"strconv"
	"strings"
)

// ensureInput is the iptables-restore --noflush input that turns st into rs
// in one transaction per table: rs's chains are rewritten whole, the jumps
// are fixed by jumpLines, and rs's absent chains are deleted with their jumps.
//
// A chain absent from st is created with -N rather than declared: if another
// writer creates it between our save and our restore, -N fails and the caller
// re-reads instead of adding a second jump. A present chain is declared,
// which in --noflush mode flushes it before its rules are appended.
func ensureInput(rs Ruleset, st saved) []byte {
	var b strings.Builder
	for _, c := range rs.Chains {
		t := st[c.Table]
		b.WriteString("*" + c.Table + "\n")
		if t.has(c.Name) {
			b.WriteString(":" + c.Name + " - [0:0]\n")
		} else {
			b.WriteString("-N " + c.Name + "\n")
		}
		for _, r := range c.Rules {
			b.WriteString(r + "\n")
		}
		b.WriteString(jumpLines(c, t))
		b.WriteString("COMMIT\n")
	}
	for _, c := range rs.Absent {
		b.WriteString(deleteChain(c, st[c.Table]))
	}
	return []byte(b.String())
}

// deleteInput is the restore input that removes every jump into rs's chains
// and then the chains. It is nil when st holds nothing of rs.
func deleteInput(rs Ruleset, st saved) []byte {
	var b strings.Builder
	for _, c := range slices.Concat(rs.Chains, rs.Absent) {
		b.WriteString(deleteChain(c, st[c.Table]))
	}
	if b.Len() == 0 {
		return nil
	}
	return []byte(b.String())
}

// deleteChain is the restore section that removes every jump into c and
// then c, declared first so it is flushed before -X; "" when t holds
// neither.
func deleteChain(c Chain, t *savedTable) string {
	jumps := t.jumpsTo(c.Name)
	if !t.has(c.Name) && len(jumps) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("*" + c.Table + "\n")
	for _, j := range jumps {
		b.WriteString(deleteLine(j))
	}
	b.WriteString(":" + c.Name + " - [0:0]\n")
	b.WriteString("-X " + c.Name + "\n")
	b.WriteString("COMMIT\n")
	return b.String()
}

// deleteLine turns a printed "-A CHAIN spec" rule into "-D CHAIN spec",
// which deletes the first rule matching spec.
func deleteLine(rule string) string {
	return "-D" + strings.TrimPrefix(rule, "-A") + "\n"
}

// jumpLines fixes the jumps into c, given those st showed. A single exact
// jump is left alone; otherwise every exact jump seen is deleted and one is
// added. Deleting all of them, rather than all but one, keeps a restore built
// from a stale save from leaving no jump at all: iptables-nft re-runs the
// input against the current ruleset when another writer committed first, so
// the -D lines either all match (leaving at least the jump added here) or the
// restore fails and the caller re-reads. Foreign jumps into c are deleted.
//
// An inserted jump must also sit below kube-proxy's jumps (see insertAt): a
// single exact jump above one of them is moved.
func jumpLines(c Chain, t *savedTable) string {
	var b strings.Builder
	exact := 0
	for _, j := range t.jumpsTo(c.Name) {
		if j == c.Jump {
			exact++
		} else {
			b.WriteString(deleteLine(j))
		}
	}
	if exact == 1 && (!c.Insert || belowKubeProxy(c, t)) {
		return b.String()
	}
	for range exact {
		b.WriteString(deleteLine(c.Jump))
	}
	b.WriteString(jumpLine(c, insertAt(c, t)))
	return b.String()
}

// jumpLine adds c's jump: an inserted one at rule number pos of its parent,
// else at the end.
func jumpLine(c Chain, pos int) string {
	spec := strings.TrimPrefix(c.Jump, "-A "+c.Parent)
	if c.Insert {
		return "-I " + c.Parent + " " + strconv.Itoa(pos) + spec + "\n"
	}
	return "-A " + c.Parent + spec + "\n"
}

// insertAt is the rule number an inserted jump into c takes in its parent,
// once every jump into c is gone: the top, so that a DROP rule another tool
// put there does not shadow pod traffic, but below kube-proxy's jumps
// (KUBE-FORWARD, KUBE-SERVICES, ...), whose drops and rejects must see pod
// traffic first: a Service without endpoints is refused, a packet conntrack
// calls INVALID dropped, a load balancer's source ranges enforced.
func insertAt(c Chain, t *savedTable) int {
	pos := 1
	n := 0
	for _, r := range t.chainRules(c.Parent) {
		tg := target(fields(r))
		if tg == c.Name {
			continue
		}
		n++
		if strings.HasPrefix(tg, kubeProxyPrefix) {
			pos = n + 1
		}
	}
	return pos
}

// kubeProxyPrefix starts the name of every chain kube-proxy's iptables mode
// makes.
const kubeProxyPrefix = "KUBE-"

// belowKubeProxy reports whether no kube-proxy jump follows c's first jump
// in its parent.
func belowKubeProxy(c Chain, t *savedTable) bool {
	seen := false
	for _, r := range t.chainRules(c.Parent) {
		tg := target(fields(r))
		switch {
		case tg == c.Name:
			seen = true
		case seen && strings.HasPrefix(tg, kubeProxyPrefix):
			return false
		}
	}
	return true
}
