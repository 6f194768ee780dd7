package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// agentChain holds the agent's FORWARD accepts: one -s and one -d rule per
// cluster CIDR, so their number is constant per cluster.
const agentChain = "NB-AGENT-FWD"

// jumpRule is how iptables-save prints the jump from FORWARD.
const jumpRule = "-A FORWARD -j " + agentChain

// execFunc runs argv with stdin and returns its standard output; tests wrap
// it to run inside their netns and to record calls.
type execFunc func(ctx context.Context, stdin []byte, argv ...string) ([]byte, error)

// execTimeout bounds every command the agent runs: a hung iptables must
// fail the pass, not stop the reconcile loop (and with it /healthz).
const execTimeout = 30 * time.Second

// runCommand is the production execFunc.
func runCommand(ctx context.Context, stdin []byte, argv ...string) ([]byte, error) {
	return runCommandWithin(ctx, execTimeout, stdin, argv...)
}

// runCommandWithin runs argv, killed after timeout; WaitDelay stops the
// wait for a child that keeps its output open after the kill.
func runCommandWithin(ctx context.Context, timeout time.Duration, stdin []byte, argv ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.WaitDelay = time.Second
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if ctx.Err() != nil && err != nil {
		err = fmt.Errorf("%w after %s: %w", err, timeout, ctx.Err())
	}
	if err != nil && stderr.Len() > 0 {
		err = fmt.Errorf("%w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, err
}

// ruleSyncer keeps the NB-AGENT-FWD chain of each family in place. It
// remembers what it applied, so a reconcile with unchanged cluster CIDRs
// execs nothing unless asked to verify (on resync).
type ruleSyncer struct {
	exec    execFunc
	log     *slog.Logger
	applied [2][]netip.Prefix // per family, in place as of the last apply or verify
	known   [2]bool           // applied is valid
	missing [2]bool           // the family's iptables binaries are not installed
}

// tools names the save and restore binaries of a family.
func tools(f int) (save, restore string) {
	if f == v4 {
		return "iptables-save", "iptables-restore"
	}
	return "ip6tables-save", "ip6tables-restore"
}

// sync makes each family's chain hold exactly the rules for cidrs; verify
// re-reads the kernel even when the cache says the rules are in place. It
// returns whether it changed the host.
func (r *ruleSyncer) sync(ctx context.Context, cidrs []netip.Prefix, verify bool) (bool, error) {
	var byFamily [2][]netip.Prefix
	for _, p := range cidrs {
		f := familyOf(p.Addr())
		byFamily[f] = append(byFamily[f], p)
	}
	changed := false
	var errs []error
	for f := range byFamily {
		if len(byFamily[f]) == 0 && !r.known[f] {
			continue // the family never had cluster CIDRs: leave its tables alone
		}
		if r.known[f] && !verify && slices.Equal(r.applied[f], byFamily[f]) {
			continue
		}
		c, err := r.syncFamily(ctx, f, byFamily[f])
		changed = changed || c
		errs = append(errs, err)
	}
	return changed, errors.Join(errs...)
}

// syncFamily reads the family's filter table and restores the chain when it
// or the jump differs: declaration and rules in one commit, so the chain is
// swapped atomically and never seen empty.
// Equivalent to: iptables-save -t filter; iptables-restore -w 5 --noflush
func (r *ruleSyncer) syncFamily(ctx context.Context, f int, cidrs []netip.Prefix) (bool, error) {
	save, restore := tools(f)
	out, err := r.exec(ctx, nil, save, "-t", "filter")
	if errors.Is(err, exec.ErrNotFound) {
		if !r.missing[f] {
			r.log.Warn("iptables not installed: FORWARD accepts for the cluster CIDRs skipped", "tool", save)
		}
		r.missing[f], r.known[f], r.applied[f] = true, true, cidrs
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%s -t filter: %w", save, err)
	}
	r.missing[f] = false
	want := ruleLines(cidrs)
	jump, have := parseChain(string(out))
	if jump && slices.Equal(have, want) {
		r.known[f], r.applied[f] = true, cidrs
		return false, nil
	}
	if _, err := r.exec(ctx, renderRestore(want, !jump), restore, "-w", "5", "--noflush"); err != nil {
		r.known[f] = false
		return false, fmt.Errorf("%s of chain %s: %w", restore, agentChain, err)
	}
	r.known[f], r.applied[f] = true, cidrs
	r.log.Info("forward rules replaced", "chain", agentChain, "family", familyName(f), "cidrs", cidrs, "jump_added", !jump)
	return true, nil
}

// ruleLines renders the chain's rules as iptables-save prints them.
func ruleLines(cidrs []netip.Prefix) []string {
	lines := make([]string, 0, 2*len(cidrs))
	for _, p := range cidrs {
		lines = append(lines, "-A "+agentChain+" -s "+p.String()+" -j ACCEPT")
	}
	for _, p := range cidrs {
		lines = append(lines, "-A "+agentChain+" -d "+p.String()+" -j ACCEPT")
	}
	return lines
}

// renderRestore is the iptables-restore --noflush input: the chain
// declaration flushes the chain, the rules refill it, and the jump is
// inserted at the top of FORWARD only when missing.
func renderRestore(lines []string, addJump bool) []byte {
	var b strings.Builder
	b.WriteString("*filter\n:" + agentChain + " - [0:0]\n")
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	if addJump {
		b.WriteString("-I FORWARD 1 -j " + agentChain + "\n")
	}
	b.WriteString("COMMIT\n")
	return []byte(b.String())
}

// parseChain reads iptables-save output: whether FORWARD jumps to the agent
// chain, and the chain's rules.
func parseChain(save string) (jump bool, rules []string) {
	prefix := "-A " + agentChain + " "
	for _, l := range strings.Split(save, "\n") {
		switch {
		case l == jumpRule:
			jump = true
		case strings.HasPrefix(l, prefix):
			rules = append(rules, l)
		}
	}
	return jump, rules
}
