package rules

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// Restore sections deleting mynet's chains, as ensureInput writes them for
// absent chains.
const (
	delPost = "*nat\n" + delPostJump + ":NB-POST-11c844f95e - [0:0]\n-X NB-POST-11c844f95e\nCOMMIT\n"
	delFwd  = "*filter\n-D FORWARD -m comment --comment \"nodebridge: mynet\" -j NB-FWD-11c844f95e\n" +
		":NB-FWD-11c844f95e - [0:0]\n-X NB-FWD-11c844f95e\nCOMMIT\n"
)

func TestForwardDrops(t *testing.T) {
	dump := func(policy string, rules ...string) string {
		return "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD " + policy + " [0:0]\n:KUBE-FORWARD - [0:0]\n" +
			strings.Join(rules, "\n") + "\nCOMMIT\n"
	}
	for _, tc := range []struct {
		name string
		save string
		want bool
	}{
		{"policy DROP", dump("DROP"), true},
		{"policy ACCEPT", dump("ACCEPT", "-A FORWARD -j KUBE-FORWARD"), false},
		{"DROP rule", dump("ACCEPT", "-A FORWARD -s 10.1.0.0/16 -j DROP"), true},
		{"REJECT rule", dump("ACCEPT", "-A FORWARD -j REJECT --reject-with icmp-port-unreachable"), true},
		{"DROP in a chain FORWARD jumps to", dump("ACCEPT", "-A FORWARD -j KUBE-FORWARD",
			"-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP"), false},
		{"-j DROP inside a comment", dump("ACCEPT", `-A FORWARD -m comment --comment "no -j DROP here" -j ACCEPT`), false},
		{"no filter table", "*nat\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n", false},
		{"nothing saved", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseSave([]byte(tc.save))["filter"].forwardDrops(); got != tc.want {
				t.Errorf("forwardDrops = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDropsPacket(t *testing.T) {
	counter := &expr.Counter{}
	for _, tc := range []struct {
		name  string
		exprs []expr.Any
		want  bool
	}{
		{"-j DROP", []expr.Any{counter, &expr.Verdict{Kind: expr.VerdictDrop}}, true},
		{"-j REJECT (xtables target)", []expr.Any{counter, &expr.Target{Name: "REJECT"}}, true},
		{"nft reject", []expr.Any{&expr.Reject{}}, true},
		{"-j ACCEPT", []expr.Any{counter, &expr.Verdict{Kind: expr.VerdictAccept}}, false},
		{"-j KUBE-FORWARD", []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: "KUBE-FORWARD"}}, false},
		{"-j LOG", []expr.Any{&expr.Target{Name: "LOG"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := dropsPacket(&nftables.Rule{Exprs: tc.exprs}); got != tc.want {
				t.Errorf("dropsPacket = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestEnsureForward: what the nftables backend makes of mynet's iptables
// rules: never the masquerade, the FORWARD chain only where FORWARD drops.
func TestEnsureForward(t *testing.T) {
	present := readSave(t, "mynet-v4.save") // FORWARD policy DROP, both chains
	accepting := edit(t, present, ":FORWARD DROP [0:0]", ":FORWARD ACCEPT [0:0]")
	fwdOnly := edit(t, edit(t, edit(t, present, postJump, ""), ":NB-POST-11c844f95e - [0:0]\n", ""), natRules, "")
	for _, tc := range []struct {
		name   string
		before string
		want   string // the restore's input; "" for none
	}{
		{"iptables backend's rules, FORWARD drops", present,
			"*filter\n:NB-FWD-11c844f95e - [0:0]\n" + fwdRules + "COMMIT\n" + delPost},
		{"iptables backend's rules, FORWARD accepts", accepting, delPost + delFwd},
		{"FORWARD chain only, FORWARD drops", fwdOnly, ""},
		{"nothing, FORWARD drops", readSave(t, "noise-v4.save"),
			"*filter\n-N NB-FWD-11c844f95e\n" + fwdRules + insFwdJump + "COMMIT\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			steps := []step{{argv: save4, out: tc.before}}
			if tc.want != "" {
				steps = append(steps, step{argv: restore4}, step{argv: save4, out: fwdOnly})
			}
			b, s := newScripted(t, steps...)
			if err := ensureForward(t.Context(), b, mynet, false); err != nil {
				t.Fatalf("ensureForward: %v", err)
			}
			s.wantAllRun()
			if tc.want != "" && s.stdin(1) != tc.want {
				t.Errorf("restore input:\n%s\nwant:\n%s", s.stdin(1), tc.want)
			}
		})
	}
}

func TestCheckForward(t *testing.T) {
	present := readSave(t, "mynet-v4.save")
	for _, tc := range []struct {
		name string
		save string
		want []string // one substring per finding
	}{
		{"masquerade left by the iptables backend", present, []string{
			`iptables nat chain NB-POST-11c844f95e of network "mynet": unexpected chain`,
			`iptables nat chain POSTROUTING of network "mynet": unexpected jump "-j NB-POST-11c844f95e"`}},
		{"FORWARD chain where FORWARD accepts", edit(t, edit(t, present, ":FORWARD DROP [0:0]", ":FORWARD ACCEPT [0:0]"), postJump, ""), []string{
			`nat chain NB-POST-11c844f95e of network "mynet": unexpected chain`,
			`filter chain NB-FWD-11c844f95e of network "mynet": unexpected chain`,
			`filter chain FORWARD of network "mynet": unexpected jump "-j NB-FWD-11c844f95e"`}},
		{"no FORWARD chain where FORWARD drops", readSave(t, "noise-v4.save"), []string{
			`filter chain NB-FWD-11c844f95e of network "mynet": chain missing`,
			`filter chain FORWARD of network "mynet": missing jump`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, s := newScripted(t, step{argv: save4, out: tc.save})
			errs := checkForward(t.Context(), b, mynet, false)
			s.wantAllRun()
			if len(errs) != len(tc.want) {
				t.Fatalf("%d findings, want %d: %v", len(errs), len(tc.want), errs)
			}
			for i, err := range errs {
				if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), tc.want[i]) {
					t.Errorf("finding %d: %v, want an ErrMissing containing %q", i, err, tc.want[i])
				}
			}
		})
	}
}
