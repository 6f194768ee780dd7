package rules

import (
	"bufio"
	"bytes"
	"strings"
)

// saved is an iptables-save dump reduced to what the comparison needs: per
// table, the declared chains and the rule lines in printed order.
type saved map[string]*savedTable

// savedTable is one "*table ... COMMIT" section of a dump.
type savedTable struct {
	chains map[string]string // declared chains: their policy, "-" for a user chain
	rules  []string          // every "-A" line of the table, as printed
}

// parseSave reads iptables-save output. Counters, comments and anything it
// does not recognise are ignored: the dump belongs to everyone on the node.
func parseSave(out []byte) saved {
	st := saved{}
	var cur *savedTable
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024) // long rules (ipsets, many ports) exceed the default
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \t\r")
		switch {
		case strings.HasPrefix(line, "*"):
			cur = &savedTable{chains: map[string]string{}}
			st[line[1:]] = cur
		case cur == nil:
			continue
		case strings.HasPrefix(line, ":"):
			if name, rest, ok := strings.Cut(line[1:], " "); ok {
				policy, _, _ := strings.Cut(rest, " ")
				cur.chains[name] = policy
			}
		case strings.HasPrefix(line, "-A "):
			cur.rules = append(cur.rules, line)
		}
	}
	return st
}

// has reports whether the table declares chain. A nil table (one the dump
// does not contain) has no chains.
func (t *savedTable) has(chain string) bool {
	if t == nil {
		return false
	}
	_, ok := t.chains[chain]
	return ok
}

// forwardDrops reports whether the FORWARD chain of this (filter) table
// may drop forwarded traffic: its policy is DROP, or one of its own rules
// ends in DROP or REJECT. A drop further down a chain FORWARD jumps to is
// not looked for: it usually serves that chain's owner only.
func (t *savedTable) forwardDrops() bool {
	if !t.has("FORWARD") {
		return false
	}
	if t.chains["FORWARD"] == "DROP" {
		return true
	}
	for _, r := range t.chainRules("FORWARD") {
		if v := target(fields(r)); v == "DROP" || v == "REJECT" {
			return true
		}
	}
	return false
}

// chainRules returns the rule lines of chain, in order.
func (t *savedTable) chainRules(chain string) []string {
	if t == nil {
		return nil
	}
	var out []string
	prefix := "-A " + chain + " "
	for _, r := range t.rules {
		if strings.HasPrefix(r, prefix) {
			out = append(out, r)
		}
	}
	return out
}

// jumpsTo returns every rule outside chain whose target is chain: the jumps
// that must go before the chain can be deleted.
func (t *savedTable) jumpsTo(chain string) []string {
	if t == nil {
		return nil
	}
	var out []string
	for _, r := range t.rules {
		f := fields(r)
		if len(f) > 1 && f[1] != chain && target(f) == chain {
			out = append(out, r)
		}
	}
	return out
}

// target returns the argument of a rule's -j or -g, or "" when it has none.
func target(f []string) string {
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "-j" || f[i] == "-g" || f[i] == "--jump" || f[i] == "--goto" {
			return f[i+1]
		}
	}
	return ""
}

// fields splits a printed rule on blanks, keeping a double-quoted argument
// (a comment, say) as one field with its escapes resolved, so "-j" inside a
// comment is not taken for a target.
func fields(line string) []string {
	var out []string
	var b strings.Builder
	inField, inQuote := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case inQuote && c == '\\' && i+1 < len(line):
			i++
			b.WriteByte(line[i])
		case c == '"':
			inQuote, inField = !inQuote, true
		case !inQuote && (c == ' ' || c == '\t'):
			if inField {
				out = append(out, b.String())
				b.Reset()
				inField = false
			}
		default:
			b.WriteByte(c)
			inField = true
		}
	}
	if inField {
		out = append(out, b.String())
	}
	return out
}
