package rules

import (
	"slices"
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
		b.WriteString(jumpLines(c, t.jumpsTo(c.Name)))
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
func jumpLines(c Chain, jumps []string) string {
	var b strings.Builder
	exact := 0
	for _, j := range jumps {
		if j == c.Jump {
			exact++
		} else {
			b.WriteString(deleteLine(j))
		}
	}
	if exact == 1 {
		return b.String()
	}
	for range exact {
		b.WriteString(deleteLine(c.Jump))
	}
	b.WriteString(jumpLine(c))
	return b.String()
}

// jumpLine adds c's jump: at the top of FORWARD, so that a DROP rule placed
// there by another tool does not shadow pod traffic, else at the end.
func jumpLine(c Chain) string {
	spec := strings.TrimPrefix(c.Jump, "-A "+c.Parent)
	if c.Insert {
		return "-I " + c.Parent + " 1" + spec + "\n"
	}
	return "-A " + c.Parent + spec + "\n"
}
