package rules

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// wantDelete4 removes mynet from mynet-v4.save: jumps, then flush and -X.
const wantDelete4 = "*nat\n" + delPostJump + ":NB-POST-11c844f95e - [0:0]\n-X NB-POST-11c844f95e\nCOMMIT\n" +
	"*filter\n-D FORWARD -m comment --comment \"nodebridge: mynet\" -j NB-FWD-11c844f95e\n" +
	":NB-FWD-11c844f95e - [0:0]\n-X NB-FWD-11c844f95e\nCOMMIT\n"

func TestDeleteNetwork(t *testing.T) {
	notFound := &exec.Error{Name: "ip6tables-save", Err: exec.ErrNotFound}
	present := readSave(t, "mynet-v4.save")
	noise := readSave(t, "noise-v4.save")
	for _, tc := range []struct {
		name    string
		n       Network
		steps   []step
		stdin   map[int]string // exec index → restore input
		wantErr string
	}{
		{name: "absent: saves only", n: mynet,
			steps: []step{{argv: save4, out: noise}, {argv: save6}}},
		{name: "subnets unknown at DEL", n: Network{Name: "mynet"},
			steps: []step{{argv: save4, out: present}, {argv: restore4}, {argv: save6}},
			stdin: map[int]string{1: wantDelete4}},
		{name: "chain without jump", n: mynet,
			steps: []step{{argv: save4, out: edit(t, present, postJump, "")}, {argv: restore4}, {argv: save6}},
			stdin: map[int]string{1: "*nat\n:NB-POST-11c844f95e - [0:0]\n-X NB-POST-11c844f95e\nCOMMIT\n" +
				"*filter\n-D FORWARD -m comment --comment \"nodebridge: mynet\" -j NB-FWD-11c844f95e\n" +
				":NB-FWD-11c844f95e - [0:0]\n-X NB-FWD-11c844f95e\nCOMMIT\n"}},
		{name: "every jump goes", n: mynet,
			steps: []step{{argv: save4, out: edit(t, present, postJump, postJump+postJump+"-A OUTPUT -j NB-POST-11c844f95e\n")}, {argv: restore4}, {argv: save6}},
			stdin: map[int]string{1: "*nat\n" + delPostJump + delPostJump + "-D OUTPUT -j NB-POST-11c844f95e\n" +
				":NB-POST-11c844f95e - [0:0]\n-X NB-POST-11c844f95e\nCOMMIT\n" +
				"*filter\n-D FORWARD -m comment --comment \"nodebridge: mynet\" -j NB-FWD-11c844f95e\n" +
				":NB-FWD-11c844f95e - [0:0]\n-X NB-FWD-11c844f95e\nCOMMIT\n"}},
		{name: "lost race: re-read shows nothing left", n: mynet,
			steps: []step{{argv: save4, out: present}, {argv: restore4, err: errors.New("exit status 1: Bad rule")}, {argv: save4, out: noise}, {argv: save6}}},
		{name: "ip6tables missing, no IPv6 subnet", n: mynet,
			steps: []step{{argv: save4, out: noise}, {argv: save6, err: notFound}}},
		{name: "ip6tables missing, IPv6 subnet", n: Network{Name: "mynet", Subnets: prefixes("fd00::/64")},
			steps:   []step{{argv: save4, out: noise}, {argv: save6, err: notFound}},
			wantErr: `ip6tables-save for network "mynet": exec: "ip6tables-save": executable file not found in $PATH`},
		{name: "restore keeps failing", n: mynet,
			steps:   failingDeletes(present),
			wantErr: `iptables-restore for network "mynet": exit status 2: nope`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, s := newScripted(t, tc.steps...)
			err := b.DeleteNetwork(t.Context(), tc.n)
			if got := errString(err); got != tc.wantErr {
				t.Errorf("DeleteNetwork: %q, want %q", got, tc.wantErr)
			}
			s.wantAllRun()
			for i, want := range tc.stdin {
				if got := s.stdin(i); got != want {
					t.Errorf("exec #%d input:\n%s\nwant:\n%s", i+1, got, want)
				}
			}
		})
	}
}

// failingDeletes scripts maxWrites failed restores, each after a save that
// still shows the rules, then the last save.
func failingDeletes(present string) []step {
	var steps []step
	for range maxWrites {
		steps = append(steps, step{argv: save4, out: present}, step{argv: restore4, err: errors.New("exit status 2: nope")})
	}
	return append(steps, step{argv: save4, out: present})
}

func TestCheckNetwork(t *testing.T) {
	present := readSave(t, "mynet-v4.save")
	const where = `iptables nat chain NB-POST-11c844f95e of network "mynet": `
	for _, tc := range []struct {
		name string
		dump string
		want []string // one finding a line; none means in place
	}{
		{"in place", present, nil},
		{"nothing present", readSave(t, "noise-v4.save"), []string{
			where + "chain missing",
			`iptables nat chain POSTROUTING of network "mynet": missing jump "-j NB-POST-11c844f95e"`,
			`iptables filter chain NB-FWD-11c844f95e of network "mynet": chain missing`,
			`iptables filter chain FORWARD of network "mynet": missing jump "-j NB-FWD-11c844f95e"`,
		}},
		{"rule missing", edit(t, present, masq, ""), []string{
			where + `missing rule "-s 10.22.0.0/16 -j MASQUERADE"`,
		}},
		{"rule differs", edit(t, present, masq, strings.Replace(masq, "/16", "/24", 1)), []string{
			where + `missing rule "-s 10.22.0.0/16 -j MASQUERADE"`,
			where + `unexpected rule "-s 10.22.0.0/24 -j MASQUERADE"`,
		}},
		{"rules out of order", edit(t, edit(t, present, masq, ""), postJump, postJump+masq), []string{
			where + "rules out of order",
		}},
		{"jump twice and a foreign jump", edit(t, present, postJump, postJump+postJump+"-A OUTPUT -j NB-POST-11c844f95e\n"), []string{
			`iptables nat chain OUTPUT of network "mynet": unexpected jump "-j NB-POST-11c844f95e"`,
			`iptables nat chain POSTROUTING of network "mynet": jump "-j NB-POST-11c844f95e" present 2 times, want once`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, s := newScripted(t, step{argv: save4, out: tc.dump})
			err := b.CheckNetwork(t.Context(), mynet)
			s.wantAllRun()
			if tc.want == nil {
				if err != nil {
					t.Errorf("CheckNetwork: %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrMissing) {
				t.Errorf("CheckNetwork: %v, want an ErrMissing", err)
			}
			if got, want := errString(err), strings.Join(tc.want, "\n"); got != want {
				t.Errorf("CheckNetwork:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestCheckNetworkSaveError(t *testing.T) {
	b, _ := newScripted(t, step{argv: save4, err: errors.New("exit status 1: no")})
	err := b.CheckNetwork(t.Context(), mynet)
	if err == nil || errors.Is(err, ErrMissing) {
		t.Errorf("CheckNetwork with a failing save: %v, want an error that is not ErrMissing", err)
	}
}

func TestRunCommand(t *testing.T) {
	out, err := runCommand(t.Context(), []byte("in"), "sh", "-c", "cat; echo out")
	if err != nil || string(out) != "inout\n" {
		t.Errorf("runCommand: %q, %v; want \"inout\\n\", nil", out, err)
	}
	_, err = runCommand(t.Context(), nil, "sh", "-c", "echo ignored; echo '  line 2 failed ' >&2; exit 3")
	if got, want := errString(err), "exit status 3: line 2 failed"; got != want {
		t.Errorf("runCommand failing: %q, want %q", got, want)
	}
	_, err = runCommand(t.Context(), nil, "nb-no-such-tool-save")
	if !errors.Is(err, exec.ErrNotFound) {
		t.Errorf("runCommand of a missing tool: %v, want exec.ErrNotFound", err)
	}
}

// errString is err's message, "" for nil.
func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
