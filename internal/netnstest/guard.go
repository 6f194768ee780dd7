package netnstest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Main runs the package's tests between two fingerprints of the machine's
// network state and returns the exit code: non-zero when the tests failed or
// when anything in the fingerprint changed. Use as
//
//	func TestMain(m *testing.M) { os.Exit(netnstest.Main(m)) }
func Main(m *testing.M) int {
	before := fingerprint()
	code := m.Run()
	after := fingerprint()
	if diff := diffLines(before, after); diff != "" {
		fmt.Fprintf(os.Stderr, "netnstest: the machine's network state changed during the tests:\n%s", diff)
		return 1
	}
	return code
}

// volatile matches what changes on its own: counters, address lifetimes,
// route expiry, the save tools' timestamps.
func volatile() []*regexp.Regexp {
	return []*regexp.Regexp{
		regexp.MustCompile(`\[\d+:\d+\]`),
		regexp.MustCompile(`(valid|preferred)_lft \S+`),
		regexp.MustCompile(`expires \d+sec`),
		regexp.MustCompile(`^# .*`),
	}
}

// fingerprint lists, one section per source, the root netns links,
// addresses, routes, rules and forwarding sysctls, the named netns and the
// files under /var/lib/cni.
func fingerprint() []string {
	sources := [][]string{
		{"ip", "-o", "link", "show"},
		{"ip", "-o", "addr", "show"},
		{"ip", "route", "show", "table", "all"},
		{"ip", "-6", "route", "show", "table", "all"},
		{"ip", "netns", "list"},
		{"iptables-save"},
		{"ip6tables-save"},
		{"nft", "list", "ruleset"},
	}
	var lines []string
	strip := volatile()
	for _, argv := range sources {
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err != nil {
			out = []byte("unavailable: " + err.Error())
		}
		for _, l := range strings.Split(string(out), "\n") {
			for _, re := range strip {
				l = re.ReplaceAllString(l, "")
			}
			if l = strings.TrimSpace(l); l != "" && !othersNetns(argv, l) {
				lines = append(lines, argv[0]+" "+argv[1]+": "+l)
			}
		}
	}
	for _, f := range []string{"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"} {
		b, _ := os.ReadFile(f) // a missing file fingerprints as empty on both sides
		lines = append(lines, f+": "+strings.TrimSpace(string(b)))
	}
	_ = filepath.WalkDir("/var/lib/cni", func(p string, _ os.DirEntry, err error) error {
		if err == nil { // absent or unreadable: nothing to list
			lines = append(lines, "file: "+p)
		}
		return nil
	})
	return lines
}

// othersNetns tells a netns made by another test process, which may come and
// go while this one runs, from one of ours or one of the machine's.
func othersNetns(argv []string, line string) bool {
	if strings.Join(argv, " ") != "ip netns list" || strings.HasPrefix(line, ownPrefix()) {
		return false
	}
	if strings.HasPrefix(line, "Error: Peer netns reference is invalid") {
		return true // ip listed a netns another process deleted meanwhile
	}
	tag, _, ok := strings.Cut(line, "-") // NewNS names start "nb<pid in hex>-"
	return ok && len(tag) > 2 && strings.HasPrefix(tag, "nb") && strings.Trim(tag[2:], "0123456789abcdef") == ""
}

// diffLines reports lines only in a ("-") or only in b ("+").
func diffLines(a, b []string) string {
	count := map[string]int{}
	for _, l := range a {
		count[l]++
	}
	for _, l := range b {
		count[l]--
	}
	var sb strings.Builder
	for _, l := range a {
		if count[l] > 0 {
			fmt.Fprintf(&sb, "- %s\n", l)
			count[l]--
		}
	}
	for _, l := range b {
		if count[l] < 0 {
			fmt.Fprintf(&sb, "+ %s\n", l)
			count[l]++
		}
	}
	return sb.String()
}
