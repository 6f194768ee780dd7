package agent

import (
	"context"
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// recorder is an execFunc answering saves from a canned table and recording
// every call as "argv | stdin".
type recorder struct {
	saves map[string]string // save tool → output
	err   error             // returned by every call when set
	calls []string
}

func (r *recorder) exec(_ context.Context, stdin []byte, argv ...string) ([]byte, error) {
	r.calls = append(r.calls, strings.Join(argv, " ")+" | "+string(stdin))
	if r.err != nil {
		return nil, r.err
	}
	return []byte(r.saves[argv[0]]), nil
}

const inPlace4 = "*filter\n:FORWARD DROP [0:0]\n:NB-AGENT-FWD - [0:0]\n-A FORWARD -j NB-AGENT-FWD\n" +
	"-A NB-AGENT-FWD -s 10.244.0.0/16 -j ACCEPT\n-A NB-AGENT-FWD -d 10.244.0.0/16 -j ACCEPT\nCOMMIT\n"

func TestRuleSync(t *testing.T) {
	cidrs := pfx(t, "10.244.0.0/16")
	restore := "iptables-restore -w 5 --noflush | *filter\n:NB-AGENT-FWD - [0:0]\n" +
		"-A NB-AGENT-FWD -s 10.244.0.0/16 -j ACCEPT\n-A NB-AGENT-FWD -d 10.244.0.0/16 -j ACCEPT\n"
	for _, tc := range []struct {
		name    string
		save    string
		wantRun []string
	}{
		{name: "absent: chain and jump in one restore", save: "*filter\n:FORWARD DROP [0:0]\nCOMMIT\n",
			wantRun: []string{"iptables-save -t filter | ", restore + "-I FORWARD 1 -j NB-AGENT-FWD\nCOMMIT\n"}},
		{name: "in place: save only", save: inPlace4,
			wantRun: []string{"iptables-save -t filter | "}},
		{name: "stale rules: chain replaced, jump kept", save: strings.ReplaceAll(inPlace4, "10.244.0.0/16", "10.244.0.0/17"),
			wantRun: []string{"iptables-save -t filter | ", restore + "COMMIT\n"}},
		{name: "extra rule: chain replaced", save: strings.Replace(inPlace4, "COMMIT", "-A NB-AGENT-FWD -j DROP\nCOMMIT", 1),
			wantRun: []string{"iptables-save -t filter | ", restore + "COMMIT\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{saves: map[string]string{"iptables-save": tc.save}}
			rs := ruleSyncer{exec: rec.exec, log: discard()}
			changed, err := rs.sync(context.Background(), cidrs, false)
			if err != nil || changed != (len(tc.wantRun) == 2) || !slices.Equal(rec.calls, tc.wantRun) {
				t.Fatalf("changed %v err %v calls:\n%q\nwant:\n%q", changed, err, rec.calls, tc.wantRun)
			}
			rec.calls = nil
			if _, err := rs.sync(context.Background(), cidrs, false); err != nil || len(rec.calls) != 0 {
				t.Errorf("unchanged CIDRs, no verify: want no exec, got %q (err %v)", rec.calls, err)
			}
			rec.saves["iptables-save"] = inPlace4
			if _, err := rs.sync(context.Background(), cidrs, true); err != nil || len(rec.calls) != 1 {
				t.Errorf("verify of rules in place: want one save, got %q (err %v)", rec.calls, err)
			}
		})
	}
}

func TestRuleSyncFamilies(t *testing.T) {
	rec := &recorder{saves: map[string]string{}}
	rs := ruleSyncer{exec: rec.exec, log: discard()}
	if _, err := rs.sync(context.Background(), pfx(t, "fd00:10:244::/56"), false); err != nil {
		t.Fatal(err)
	}
	want := []string{"ip6tables-save -t filter | ", "ip6tables-restore -w 5 --noflush | *filter\n:NB-AGENT-FWD - [0:0]\n" +
		"-A NB-AGENT-FWD -s fd00:10:244::/56 -j ACCEPT\n-A NB-AGENT-FWD -d fd00:10:244::/56 -j ACCEPT\n-I FORWARD 1 -j NB-AGENT-FWD\nCOMMIT\n"}
	if !slices.Equal(rec.calls, want) {
		t.Errorf("IPv6 only: got %q, want %q", rec.calls, want)
	}
}

func TestRuleSyncMissingTools(t *testing.T) {
	rec := &recorder{err: &exec.Error{Name: "iptables-save", Err: exec.ErrNotFound}}
	rs := ruleSyncer{exec: rec.exec, log: discard()}
	if _, err := rs.sync(context.Background(), pfx(t, "10.244.0.0/16"), false); err != nil {
		t.Fatalf("missing iptables must be skipped, got %v", err)
	}
	if !rs.missing[v4] || rs.missing[v6] {
		t.Errorf("missing: got %v, want IPv4 only", rs.missing)
	}
	rec.err = errors.New("exit status 4: xtables lock")
	if _, err := rs.sync(context.Background(), pfx(t, "10.244.0.0/16"), true); err == nil || !strings.Contains(err.Error(), "iptables-save -t filter") {
		t.Errorf("a failing save: got %v", err)
	}
}
