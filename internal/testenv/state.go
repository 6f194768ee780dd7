package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

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

// Network lists, one section per source, the root netns's links,
// addresses, routes, iptables and nftables rules and forwarding sysctls,
// and the files under /var/lib/cni. A source that cannot be read (a tool
// not installed) reads the same way before and after.
func Network() []string {
	sources := [][]string{
		{"ip", "-o", "link", "show"},
		{"ip", "-o", "addr", "show"},
		{"ip", "route", "show", "table", "all"},
		{"ip", "-6", "route", "show", "table", "all"},
		{"iptables-save"},
		{"ip6tables-save"},
		{"nft", "list", "ruleset"},
	}
	var lines []string
	for _, argv := range sources {
		lines = append(lines, command(argv)...)
	}
	for _, f := range []string{"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"} {
		b, _ := os.ReadFile(f) // a missing file reads as empty on both sides
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

// command is argv's output, one line per output line, prefixed with the
// command and stripped of what changes on its own.
func command(argv []string) []string {
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		out = []byte("unavailable: " + err.Error())
	}
	name := strings.Join(argv[:min(2, len(argv))], " ")
	var lines []string
	strip := volatile()
	for l := range strings.Lines(string(out)) {
		for _, re := range strip {
			l = re.ReplaceAllString(l, "")
		}
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, name+": "+l)
		}
	}
	return lines
}

// Netns lists the named netns that keep accepts: a caller leaves out those
// other processes make and remove while it runs.
func Netns(keep func(name string) bool) []string {
	out, _ := exec.Command("ip", "netns", "list").Output() // no netns support: none of anyone's
	var lines []string
	for l := range strings.Lines(string(out)) {
		if l = strings.TrimSpace(l); l != "" && keep(l) {
			lines = append(lines, "netns: "+l)
		}
	}
	return lines
}

// Kubelet lists what a kubelet node could leave on the machine: the
// machine-wide sysctls kubelet writes at start, the entries of the dirs
// containerd, kubelet and libcni use by default, and the mount points of
// this mount namespace (named netns mounts aside).
func Kubelet() []string {
	var lines []string
	for _, k := range []string{"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
		"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes"} {
		b, err := os.ReadFile("/proc/sys/" + k)
		lines = append(lines, fmt.Sprintf("sysctl %s: %q %v", k, strings.TrimSpace(string(b)), err))
	}
	for _, d := range []string{"/var/lib/kubelet", "/var/lib/containerd", "/var/lib/cni", "/run/containerd",
		"/opt/containerd", "/etc/cni", "/opt/cni", "/var/log/pods", "/var/log/containers"} {
		ents, err := os.ReadDir(d)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		lines = append(lines, fmt.Sprintf("dir %s: %v exists=%v", d, names, err == nil))
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return append(lines, "mountinfo: "+err.Error())
	}
	var mounts []string
	for l := range strings.Lines(string(b)) {
		if f := strings.Fields(l); len(f) > 4 && !strings.HasPrefix(f[4], "/run/netns/") {
			mounts = append(mounts, "mount "+f[4])
		}
	}
	sort.Strings(mounts)
	return append(lines, mounts...)
}

// Diff reports the lines only in before ("-") or only in after ("+"), in
// their order; "" when the two hold the same lines.
func Diff(before, after []string) string {
	count := map[string]int{}
	for _, l := range before {
		count[l]++
	}
	for _, l := range after {
		count[l]--
	}
	var sb strings.Builder
	for _, l := range before {
		if count[l] > 0 {
			fmt.Fprintf(&sb, "- %s\n", l)
			count[l]--
		}
	}
	for _, l := range after {
		if count[l] < 0 {
			fmt.Fprintf(&sb, "+ %s\n", l)
			count[l]++
		}
	}
	return sb.String()
}

// NetnsPrefix starts the name of every netns this process makes:
// "nb<pid in hex>-". Guards of other processes running at the same time
// (tests of other packages, a demo, a benchmark) tell these from their own
// by it, and leave them out of their snapshots.
func NetnsPrefix() string { return fmt.Sprintf("nb%x-", os.Getpid()) }

// OthersNetns reports whether the line of `ip netns list` names a netns of
// another process (see NetnsPrefix), which may come and go while this one
// runs, or is ip's complaint about one deleted meanwhile.
func OthersNetns(line string) bool {
	if strings.HasPrefix(line, NetnsPrefix()) {
		return false
	}
	if strings.HasPrefix(line, "Error: Peer netns reference is invalid") {
		return true
	}
	tag, _, ok := strings.Cut(line, "-")
	return ok && len(tag) > 2 && strings.HasPrefix(tag, "nb") && strings.Trim(tag[2:], "0123456789abcdef") == ""
}
