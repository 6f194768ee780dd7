package rules

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// The agent's accepts of one IPv4 cluster CIDR, as iptables-save prints them.
const clusterInPlace4 = "*filter\n:FORWARD DROP [0:0]\n:NB-AGENT-FWD - [0:0]\n-A FORWARD -j NB-AGENT-FWD\n" +
	"-A NB-AGENT-FWD -s 10.244.0.0/16 -j ACCEPT\n-A NB-AGENT-FWD -d 10.244.0.0/16 -j ACCEPT\n" +
	"-A NB-AGENT-FWD -m conntrack --ctstate DNAT -j ACCEPT\nCOMMIT\n"

var cluster4 = Cluster{Name: "nodebridge", CIDRs: prefixes("10.244.0.0/16")}

func TestEnsureCluster(t *testing.T) {
	save4, save6 := "iptables-save -t filter", "ip6tables-save -t filter"
	restore4 := "iptables-restore --noflush -w 5"
	rules := "-A NB-AGENT-FWD -s 10.244.0.0/16 -j ACCEPT\n-A NB-AGENT-FWD -d 10.244.0.0/16 -j ACCEPT\n" +
		"-A NB-AGENT-FWD -m conntrack --ctstate DNAT -j ACCEPT\n"
	for _, tc := range []struct {
		name   string
		save   string
		stdin  string // of the restore; "" for none
		noise6 string // the IPv6 filter table
	}{
		{name: "absent: chain and jump in one restore", save: "*filter\n:FORWARD DROP [0:0]\nCOMMIT\n",
			stdin: "*filter\n-N NB-AGENT-FWD\n" + rules + "-I FORWARD 1 -j NB-AGENT-FWD\nCOMMIT\n"},
		{name: "in place: saves only", save: clusterInPlace4},
		{name: "stale rules: chain replaced, jump kept", save: strings.ReplaceAll(clusterInPlace4, "10.244.0.0/16", "10.244.0.0/17"),
			stdin: "*filter\n:NB-AGENT-FWD - [0:0]\n" + rules + "COMMIT\n"},
		{name: "extra rule: chain replaced", save: strings.Replace(clusterInPlace4, "COMMIT", "-A NB-AGENT-FWD -j DROP\nCOMMIT", 1),
			stdin: "*filter\n:NB-AGENT-FWD - [0:0]\n" + rules + "COMMIT\n"},
		{name: "old IPv6 accepts go with the IPv6 CIDR", save: clusterInPlace4,
			noise6: "*filter\n:NB-AGENT-FWD - [0:0]\n-A FORWARD -j NB-AGENT-FWD\n-A NB-AGENT-FWD -s fd00::/56 -j ACCEPT\nCOMMIT\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			steps := []step{{argv: save4, out: tc.save}}
			if tc.stdin != "" {
				steps = append(steps, step{argv: restore4}, step{argv: save4, out: clusterInPlace4})
			}
			steps = append(steps, step{argv: save6, out: tc.noise6})
			if tc.noise6 != "" {
				steps = append(steps, step{argv: "ip6tables-restore --noflush -w 5"})
			}
			b, s := newScripted(t, steps...)
			if err := b.EnsureCluster(t.Context(), cluster4); err != nil {
				t.Fatal(err)
			}
			s.wantAllRun()
			if tc.stdin != "" && s.stdin(1) != tc.stdin {
				t.Errorf("restore input:\n%s\nwant:\n%s", s.stdin(1), tc.stdin)
			}
			if want := "*filter\n-D FORWARD -j NB-AGENT-FWD\n:NB-AGENT-FWD - [0:0]\n-X NB-AGENT-FWD\nCOMMIT\n"; tc.noise6 != "" && s.stdin(2) != want {
				t.Errorf("IPv6 restore input:\n%s\nwant:\n%s", s.stdin(2), want)
			}
		})
	}
}

func TestEnsureClusterFamilies(t *testing.T) {
	b, s := newScripted(t, step{argv: "iptables-save -t filter"}, step{argv: "ip6tables-save -t filter"},
		step{argv: "ip6tables-restore --noflush -w 5"}, step{argv: "ip6tables-save -t filter",
			out: strings.ReplaceAll(clusterInPlace4, "10.244.0.0/16", "fd00:10:244::/56")})
	if err := b.EnsureCluster(t.Context(), Cluster{Name: "nodebridge", CIDRs: prefixes("fd00:10:244::/56")}); err != nil {
		t.Fatal(err)
	}
	s.wantAllRun()
	want := "*filter\n-N NB-AGENT-FWD\n-A NB-AGENT-FWD -s fd00:10:244::/56 -j ACCEPT\n" +
		"-A NB-AGENT-FWD -d fd00:10:244::/56 -j ACCEPT\n-A NB-AGENT-FWD -m conntrack --ctstate DNAT -j ACCEPT\n" +
		"-I FORWARD 1 -j NB-AGENT-FWD\nCOMMIT\n"
	if got := s.stdin(2); got != want {
		t.Errorf("IPv6 only: restore input\n%s\nwant:\n%s", got, want)
	}
}

func TestEnsureClusterMissingTools(t *testing.T) {
	notFound := &exec.Error{Name: "iptables-save", Err: exec.ErrNotFound}
	notFound6 := &exec.Error{Name: "ip6tables-save", Err: exec.ErrNotFound}
	b, s := newScripted(t, step{argv: "iptables-save -t filter", err: notFound}, step{argv: "ip6tables-save -t filter", err: notFound6})
	err := b.EnsureCluster(t.Context(), cluster4)
	var missing *NotInstalledError
	if !errors.As(err, &missing) || strings.Join(missing.Tools, ",") != "iptables" || !errors.Is(err, exec.ErrNotFound) {
		t.Fatalf("missing iptables must be skipped and named, IPv4 only: got %v", err)
	}
	s.wantAllRun()
	b, _ = newScripted(t, step{argv: "iptables-save -t filter", err: errors.New("exit status 4: xtables lock")})
	if err := b.EnsureCluster(t.Context(), cluster4); err == nil || errors.As(err, &missing) || !strings.Contains(err.Error(), "iptables-save") {
		t.Errorf("a failing save: got %v", err)
	}
}

func TestCheckCluster(t *testing.T) {
	b, _ := newScripted(t, step{argv: "iptables-save -t filter", out: strings.Replace(clusterInPlace4, "-A FORWARD -j NB-AGENT-FWD\n", "", 1)},
		step{argv: "ip6tables-save -t filter", out: "*filter\n:NB-AGENT-FWD - [0:0]\nCOMMIT\n"})
	err := b.CheckCluster(t.Context(), cluster4)
	for _, want := range []string{`iptables filter chain FORWARD of network "nodebridge": missing jump "-j NB-AGENT-FWD"`,
		`ip6tables filter chain NB-AGENT-FWD of network "nodebridge": unexpected chain`} {
		if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want an ErrMissing containing %q", err, want)
		}
	}
	b, _ = newScripted(t, step{argv: "iptables-save -t filter", out: clusterInPlace4}, step{argv: "ip6tables-save -t filter"})
	if err := b.CheckCluster(t.Context(), cluster4); err != nil {
		t.Errorf("accepts in place: %v", err)
	}
}

func TestDeleteClusterIPTables(t *testing.T) {
	b, s := newScripted(t, step{argv: "iptables-save -t filter", out: clusterInPlace4}, step{argv: "iptables-restore --noflush -w 5"},
		step{argv: "ip6tables-save -t filter", err: &exec.Error{Name: "ip6tables-save", Err: exec.ErrNotFound}})
	if err := b.DeleteCluster(t.Context(), cluster4); err != nil {
		t.Fatal(err)
	}
	s.wantAllRun()
	if want := "*filter\n-D FORWARD -j NB-AGENT-FWD\n:NB-AGENT-FWD - [0:0]\n-X NB-AGENT-FWD\nCOMMIT\n"; s.stdin(1) != want {
		t.Errorf("restore input:\n%s\nwant:\n%s", s.stdin(1), want)
	}
}
