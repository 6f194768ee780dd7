package rules

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// The argv each family's commands must be run with.
const (
	save4    = "iptables-save"
	restore4 = "iptables-restore --noflush -w 5"
	save6    = "ip6tables-save"
	restore6 = "ip6tables-restore --noflush -w 5"
)

// step is a command the scripted seam expects next, and what it returns.
type step struct {
	argv string
	out  string
	err  error
}

// call is a command the seam was asked to run.
type call struct{ argv, stdin string }

// scripted is an exec seam that answers with steps in order and records
// every call, so tests assert the exact argv and stdin of each exec.
type scripted struct {
	t     *testing.T
	steps []step
	calls []call
}

// newScripted returns a backend whose execs are answered by steps.
func newScripted(t *testing.T, steps ...step) (*IPTables, *scripted) {
	t.Helper()
	s := &scripted{t: t, steps: steps}
	b := New(t.Logf)
	b.run = s.run
	return b, s
}

func (s *scripted) run(_ context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	argv := strings.Join(append([]string{name}, args...), " ")
	s.calls = append(s.calls, call{argv: argv, stdin: string(stdin)})
	i := len(s.calls) - 1
	if i >= len(s.steps) {
		s.t.Errorf("exec #%d %q: not scripted", i+1, argv)
		return nil, errors.New("not scripted")
	}
	if argv != s.steps[i].argv {
		s.t.Errorf("exec #%d: %q, want %q", i+1, argv, s.steps[i].argv)
	}
	return []byte(s.steps[i].out), s.steps[i].err
}

// wantAllRun fails t unless every step ran, and nothing more.
func (s *scripted) wantAllRun() {
	s.t.Helper()
	if len(s.calls) != len(s.steps) {
		s.t.Errorf("%d execs, want %d: %q", len(s.calls), len(s.steps), s.calls)
	}
}

// stdin returns what the i-th exec (from 0) read.
func (s *scripted) stdin(i int) string {
	s.t.Helper()
	if i >= len(s.calls) {
		s.t.Fatalf("exec #%d never ran", i+1)
	}
	return s.calls[i].stdin
}

var mynet = Network{Name: "mynet", Subnets: prefixes("10.22.0.0/16")}

// The lines of mynet-v4.save that tests damage.
const (
	postJump = `-A POSTROUTING -m comment --comment "nodebridge: mynet" -j NB-POST-11c844f95e` + "\n"
	fwdJump  = `-A FORWARD -m comment --comment "nodebridge: mynet" -j NB-FWD-11c844f95e` + "\n"
	masq     = `-A NB-POST-11c844f95e -s 10.22.0.0/16 -m comment --comment "nodebridge: mynet" -j MASQUERADE` + "\n"
)

// Restore inputs spelled out in full: the rules first, then the jumps.
const (
	natRules = `-A NB-POST-11c844f95e -d 10.22.0.0/16 -m comment --comment "nodebridge: mynet" -j RETURN
-A NB-POST-11c844f95e -d 224.0.0.0/4 -m comment --comment "nodebridge: mynet" -j RETURN
-A NB-POST-11c844f95e -s 10.22.0.0/16 -m comment --comment "nodebridge: mynet" -j MASQUERADE
`
	fwdRules = `-A NB-FWD-11c844f95e -s 10.22.0.0/16 -m comment --comment "nodebridge: mynet" -j ACCEPT
-A NB-FWD-11c844f95e -d 10.22.0.0/16 -m comment --comment "nodebridge: mynet" -j ACCEPT
`
	addPostJump = `-A POSTROUTING -m comment --comment "nodebridge: mynet" -j NB-POST-11c844f95e` + "\n"
	delPostJump = `-D POSTROUTING -m comment --comment "nodebridge: mynet" -j NB-POST-11c844f95e` + "\n"
	insFwdJump  = `-I FORWARD 3 -m comment --comment "nodebridge: mynet" -j NB-FWD-11c844f95e` + "\n"
)

func TestEnsureRestoreInput(t *testing.T) {
	present := readSave(t, "mynet-v4.save")
	for _, tc := range []struct {
		name   string
		before string
		want   string
	}{
		{"nothing present", readSave(t, "noise-v4.save"),
			"*nat\n-N NB-POST-11c844f95e\n" + natRules + addPostJump + "COMMIT\n" +
				"*filter\n-N NB-FWD-11c844f95e\n" + fwdRules + insFwdJump + "COMMIT\n"},
		{"jump missing", edit(t, present, fwdJump, ""),
			"*nat\n:NB-POST-11c844f95e - [0:0]\n" + natRules + "COMMIT\n" +
				"*filter\n:NB-FWD-11c844f95e - [0:0]\n" + fwdRules + insFwdJump + "COMMIT\n"},
		{"duplicate jumps", edit(t, present, postJump, postJump+postJump),
			"*nat\n:NB-POST-11c844f95e - [0:0]\n" + natRules + delPostJump + delPostJump + addPostJump + "COMMIT\n" +
				"*filter\n:NB-FWD-11c844f95e - [0:0]\n" + fwdRules + "COMMIT\n"},
		{"chain content differs", edit(t, present, masq, strings.Replace(masq, "/16", "/24", 1)+"-A NB-POST-11c844f95e -j ACCEPT\n"),
			"*nat\n:NB-POST-11c844f95e - [0:0]\n" + natRules + "COMMIT\n" +
				"*filter\n:NB-FWD-11c844f95e - [0:0]\n" + fwdRules + "COMMIT\n"},
		{"foreign jump", edit(t, present, postJump, postJump+"-A OUTPUT -j NB-POST-11c844f95e\n"),
			"*nat\n:NB-POST-11c844f95e - [0:0]\n" + natRules + "-D OUTPUT -j NB-POST-11c844f95e\n" + "COMMIT\n" +
				"*filter\n:NB-FWD-11c844f95e - [0:0]\n" + fwdRules + "COMMIT\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, s := newScripted(t,
				step{argv: save4, out: tc.before},
				step{argv: restore4},
				step{argv: save4, out: present})
			if err := b.EnsureNetwork(t.Context(), mynet); err != nil {
				t.Fatalf("EnsureNetwork: %v", err)
			}
			s.wantAllRun()
			if got := s.stdin(1); got != tc.want {
				t.Errorf("restore input:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestEnsureInPlaceIsOneSave(t *testing.T) {
	b, s := newScripted(t, step{argv: save4, out: readSave(t, "mynet-v4.save")})
	if err := b.EnsureNetwork(t.Context(), mynet); err != nil {
		t.Fatalf("EnsureNetwork: %v", err)
	}
	s.wantAllRun()
}

// TestEnsureBelowKubeProxy: the FORWARD jump goes below kube-proxy's jumps,
// whose rejects and drops must see pod traffic first, and a jump above one
// of them is moved there.
func TestEnsureBelowKubeProxy(t *testing.T) {
	present := readSave(t, "mynet-v4.save")
	kube := "-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD\n"
	above := edit(t, edit(t, present, fwdJump, ""), kube, fwdJump+kube)
	b, s := newScripted(t,
		step{argv: save4, out: above},
		step{argv: restore4},
		step{argv: save4, out: present})
	if err := b.EnsureNetwork(t.Context(), mynet); err != nil {
		t.Fatalf("EnsureNetwork: %v", err)
	}
	s.wantAllRun()
	want := "*nat\n:NB-POST-11c844f95e - [0:0]\n" + natRules + "COMMIT\n" +
		"*filter\n:NB-FWD-11c844f95e - [0:0]\n" + fwdRules + "-D" + strings.TrimPrefix(fwdJump, "-A") + insFwdJump + "COMMIT\n"
	if got := s.stdin(1); got != want {
		t.Errorf("restore input:\n%s\nwant:\n%s", got, want)
	}
}

func TestEnsureDualStack(t *testing.T) {
	n := Network{Name: "mynet", Subnets: prefixes("fd00:22::/64", "10.22.0.0/16")}
	v6Rules := `-A NB-POST-11c844f95e -d fd00:22::/64 -m comment --comment "nodebridge: mynet" -j RETURN
-A NB-POST-11c844f95e -d ff00::/8 -m comment --comment "nodebridge: mynet" -j RETURN
-A NB-POST-11c844f95e -s fd00:22::/64 -m comment --comment "nodebridge: mynet" -j MASQUERADE
`
	v6Fwd := `-A NB-FWD-11c844f95e -s fd00:22::/64 -m comment --comment "nodebridge: mynet" -j ACCEPT
-A NB-FWD-11c844f95e -d fd00:22::/64 -m comment --comment "nodebridge: mynet" -j ACCEPT
`
	v6After := "*nat\n:POSTROUTING ACCEPT [0:0]\n:NB-POST-11c844f95e - [0:0]\n" + postJump + v6Rules + "COMMIT\n" +
		"*filter\n:FORWARD ACCEPT [0:0]\n:NB-FWD-11c844f95e - [0:0]\n" + fwdJump + v6Fwd + "COMMIT\n"
	b, s := newScripted(t,
		step{argv: save4, out: readSave(t, "mynet-v4.save")},
		step{argv: save6, out: ""}, // a fresh netns prints no ip6tables table at all
		step{argv: restore6},
		step{argv: save6, out: v6After})
	if err := b.EnsureNetwork(t.Context(), n); err != nil {
		t.Fatalf("EnsureNetwork: %v", err)
	}
	s.wantAllRun()
	want := "*nat\n-N NB-POST-11c844f95e\n" + v6Rules + addPostJump + "COMMIT\n" +
		"*filter\n-N NB-FWD-11c844f95e\n" + v6Fwd + strings.Replace(insFwdJump, " 3 ", " 1 ", 1) + "COMMIT\n"
	if got := s.stdin(2); got != want {
		t.Errorf("ip6tables-restore input:\n%s\nwant:\n%s", got, want)
	}
}

func TestEnsureLostRace(t *testing.T) {
	// Another process created the chain between our save and our restore:
	// -N fails, and the re-read shows everything in place.
	lost := errors.New("exit status 1: iptables-restore: line 2 failed: Chain already exists.")
	b, s := newScripted(t,
		step{argv: save4, out: readSave(t, "noise-v4.save")},
		step{argv: restore4, err: lost},
		step{argv: save4, out: readSave(t, "mynet-v4.save")})
	if err := b.EnsureNetwork(t.Context(), mynet); err != nil {
		t.Fatalf("EnsureNetwork after a lost race: %v", err)
	}
	s.wantAllRun()
}

func TestEnsureRewritesWhenWriteDidNotStick(t *testing.T) {
	// iptables-nft merged a racing writer's restore into ours: both
	// succeeded and the jump is there twice. The next write removes both
	// copies it saw and adds one.
	present := readSave(t, "mynet-v4.save")
	twice := edit(t, present, postJump, postJump+postJump)
	b, s := newScripted(t,
		step{argv: save4, out: readSave(t, "noise-v4.save")},
		step{argv: restore4},
		step{argv: save4, out: twice},
		step{argv: save4, out: twice}, // re-read after the pause
		step{argv: restore4},
		step{argv: save4, out: present})
	if err := b.EnsureNetwork(t.Context(), mynet); err != nil {
		t.Fatalf("EnsureNetwork: %v", err)
	}
	s.wantAllRun()
	want := "*nat\n:NB-POST-11c844f95e - [0:0]\n" + natRules + delPostJump + delPostJump + addPostJump + "COMMIT\n" +
		"*filter\n:NB-FWD-11c844f95e - [0:0]\n" + fwdRules + "COMMIT\n"
	if got := s.stdin(4); got != want {
		t.Errorf("second restore input:\n%s\nwant:\n%s", got, want)
	}
}

func TestEnsureGivesUp(t *testing.T) {
	noise := readSave(t, "noise-v4.save")
	boom := errors.New("exit status 1: iptables-restore: line 3 failed")
	steps := []step{{argv: save4, out: noise}, {argv: restore4, err: boom}, {argv: save4, out: noise}}
	for range maxWrites - 1 {
		steps = append(steps, step{argv: save4, out: noise}, step{argv: restore4, err: boom}, step{argv: save4, out: noise})
	}
	b, s := newScripted(t, steps...)
	err := b.EnsureNetwork(t.Context(), mynet)
	s.wantAllRun()
	want := `iptables-restore for network "mynet": exit status 1: iptables-restore: line 3 failed`
	if err == nil || err.Error() != want || !errors.Is(err, boom) {
		t.Errorf("EnsureNetwork: %v, want %q", err, want)
	}
}

func TestEnsureSaveError(t *testing.T) {
	b, s := newScripted(t, step{argv: save4, err: errors.New("exit status 4: iptables-save: permission denied")})
	err := b.EnsureNetwork(t.Context(), mynet)
	s.wantAllRun()
	want := `iptables-save for network "mynet": exit status 4: iptables-save: permission denied`
	if err == nil || err.Error() != want {
		t.Errorf("EnsureNetwork: %v, want %q", err, want)
	}
}

func TestEnsureCanceledDuringPause(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	noise := readSave(t, "noise-v4.save")
	b, _ := newScripted(t,
		step{argv: save4, out: noise},
		step{argv: restore4, err: errors.New("exit status 1")},
		step{argv: save4, out: noise})
	b.logf = func(string, ...any) { cancel() } // cancel as the first write is logged
	if err := b.EnsureNetwork(ctx, mynet); !errors.Is(err, context.Canceled) {
		t.Errorf("EnsureNetwork with a canceled context: %v, want context.Canceled", err)
	}
}
