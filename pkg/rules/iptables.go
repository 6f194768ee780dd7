package rules

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// IPTables is the Backend that drives iptables-save and iptables-restore
// (ip6tables-* for IPv6): one save per family to read, one restore per family
// to write, whatever the number of rules.
type IPTables struct {
	logf func(format string, args ...any)
	// run executes a command with stdin and returns its stdout; tests swap it
	// to record argv or to run inside a netns.
	run func(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error)
	// mode picks the commands run: as installed, or one variant's own.
	mode IPTablesMode
}

var _ Backend = (*IPTables)(nil)

// New returns an IPTables backend that logs through logf; nil logf discards.
func New(logf func(format string, args ...any)) *IPTables {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &IPTables{logf: logf, run: runCommand}
}

// newIPTables is New running mode's commands.
func newIPTables(logf func(format string, args ...any), mode IPTablesMode) *IPTables {
	t := New(logf)
	t.mode = mode
	return t
}

// variant is the variant whose rules t reads and writes (see
// iptablesVariant).
func (t *IPTables) variant() string {
	if t.mode != ModeInstalled {
		return string(t.mode)
	}
	return iptablesVariant()
}

// runCommand runs name with args, never through a shell, and folds stderr
// into the error because that is where iptables says which line it
// rejected. A command still running when ctx ends is killed, and the error
// carries ctx's cause, which says which deadline passed.
func runCommand(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = time.Second // a child that keeps the output open after the kill must not hold us
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w: %w", err, context.Cause(ctx))
		}
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return nil, fmt.Errorf("%w: %s", err, msg)
		}
		return nil, err
	}
	return stdout.Bytes(), nil
}

// EnsureNetwork makes n's rules exactly as rendered in each family n has
// subnets of. When they are already in place it costs one iptables-save per
// family. Equivalent to: iptables-save; iptables-restore --noflush -w 5.
func (t *IPTables) EnsureNetwork(ctx context.Context, n Network) error {
	for _, rs := range Rules(n) {
		if err := t.ensure(ctx, rs.IPv6, "", func(saved) Ruleset { return rs }, n.Name); err != nil {
			return err
		}
	}
	return nil
}

// wantFunc renders the rules one family must hold given the family's saved
// state, for rules that depend on other software's (see forwardOnly).
type wantFunc func(saved) Ruleset

// ensure writes one family's rules when they differ, then reads them back:
// iptables-nft re-runs a restore against the current ruleset when another
// writer committed first, so two racing restores can both succeed and leave
// two jumps, and only a re-read shows it. A write that failed or did not
// stick is redone from a fresh save after a short random pause. It saves
// table alone, or every table when table is "".
func (t *IPTables) ensure(ctx context.Context, v6 bool, table string, want wantFunc, network string) error {
	var werr error
	for attempt := 0; ; attempt++ {
		st, rs, diff, err := t.compare(ctx, v6, table, want, network)
		if err != nil || len(diff) == 0 {
			return err
		}
		if attempt == maxWrites {
			if werr != nil {
				return werr
			}
			return fmt.Errorf("%s rules of network %q still differ after %d writes: %w", familyName(v6), network, maxWrites, errors.Join(diff...))
		}
		if attempt > 0 {
			if err := Backoff(ctx, attempt); err != nil {
				return fmt.Errorf("%s rules of network %q: %w", familyName(v6), network, err)
			}
			if st, rs, diff, err = t.compare(ctx, v6, table, want, network); err != nil || len(diff) == 0 {
				return err
			}
		}
		t.logf("%s: writing rules of network %q (write %d): %v", familyName(v6), network, attempt+1, errors.Join(diff...))
		werr = t.restore(ctx, v6, network, ensureInput(rs, st))
	}
}

// compare saves one family, renders what it must hold, and lists how the
// two depart.
func (t *IPTables) compare(ctx context.Context, v6 bool, table string, want wantFunc, network string) (saved, Ruleset, []error, error) {
	st, err := t.save(ctx, v6, table, network)
	if err != nil {
		return nil, Ruleset{}, nil, err
	}
	rs := want(st)
	return st, rs, differences(rs, st, network), nil
}

// DeleteNetwork removes n's chains and every jump into them in both
// families, whatever n.Subnets says, since a DEL may not know them. A family
// whose tools are not installed is skipped unless n has subnets of it.
// Equivalent to: iptables-save; iptables-restore --noflush -w 5.
func (t *IPTables) DeleteNetwork(ctx context.Context, n Network) error {
	for _, v6 := range []bool{false, true} {
		err := t.delete(ctx, render(n.Name, v6, nil, nil), n.Name)
		if errors.Is(err, exec.ErrNotFound) && len(familySubnets(n.Subnets, v6)) == 0 {
			t.logf("%s: not installed, skipping delete of network %q: %v", familyName(v6), n.Name, err)
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// delete removes one family's chains. A restore that lost a race with
// another writer (its -D finds the jump gone) is redone from a fresh save,
// which usually shows nothing left to delete; at most maxWrites restores.
func (t *IPTables) delete(ctx context.Context, rs Ruleset, network string) error {
	var werr error
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if err := Backoff(ctx, attempt); err != nil {
				return fmt.Errorf("%s rules of network %q: %w", familyName(rs.IPv6), network, err)
			}
		}
		st, err := t.save(ctx, rs.IPv6, tableOf(rs), network)
		if err != nil {
			return err
		}
		in := deleteInput(rs, st)
		if in == nil {
			return nil
		}
		if attempt == maxWrites {
			return werr
		}
		if werr = t.restore(ctx, rs.IPv6, network, in); werr == nil {
			return nil
		}
		t.logf("%s: deleting rules of network %q (write %d): %v", familyName(rs.IPv6), network, attempt+1, werr)
	}
}

// CheckNetwork reports, as errors wrapping ErrMissing, every chain, rule or
// jump of n that is absent or differs from the rendered rules.
func (t *IPTables) CheckNetwork(ctx context.Context, n Network) error {
	var errs []error
	for _, rs := range Rules(n) {
		st, err := t.save(ctx, rs.IPv6, "", n.Name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, differences(rs, st, n.Name)...)
	}
	return errors.Join(errs...)
}

// save reads one family in one exec: table alone, or every table when
// table is "" (the cost of a save grows with the rules it prints, and
// kube-proxy fills nat).
func (t *IPTables) save(ctx context.Context, v6 bool, table, network string) (saved, error) {
	name := t.mode.tool(v6, "save")
	var args []string
	if table != "" {
		args = []string{"-t", table}
	}
	out, err := t.run(ctx, nil, name, args...)
	if err != nil {
		return nil, fmt.Errorf("%s for network %q: %w", name, network, err)
	}
	return parseSave(out), nil
}

// tableOf is the one table all of rs's chains are in, or "" when they
// span several.
func tableOf(rs Ruleset) string {
	table := ""
	for _, c := range slices.Concat(rs.Chains, rs.Absent) {
		if table != "" && c.Table != table {
			return ""
		}
		table = c.Table
	}
	return table
}

// restore applies input without flushing anyone else's rules, waiting up to
// 5 s for the xtables lock that iptables-legacy writers take.
func (t *IPTables) restore(ctx context.Context, v6 bool, network string, input []byte) error {
	name := t.mode.tool(v6, "restore")
	if _, err := t.run(ctx, input, name, "--noflush", "-w", "5"); err != nil {
		return fmt.Errorf("%s for network %q: %w", name, network, err)
	}
	return nil
}
