package main

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
)

// machineState lists, one line each, what a kubelet node could leave on
// the machine: its own links, addresses and routes (fields that change on
// their own removed), the netns this process named, the sysctls kubelet
// writes at start, and the dirs containerd, kubelet and libcni use by
// default. Compared before and after, it shows the run left the machine
// as it found it.
func machineState() []string {
	sources := [][]string{
		{"ip", "-o", "link", "show"},
		{"ip", "-o", "addr", "show"},
		{"ip", "route", "show", "table", "all"},
		{"ip", "-6", "route", "show", "table", "all"},
	}
	lifetimes := regexp.MustCompile(`(valid|preferred)_lft \S+|expires \d+sec`)
	var lines []string
	for _, argv := range sources {
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err != nil {
			lines = append(lines, fmt.Sprintf("%v: %v", argv, err))
			continue
		}
		for l := range strings.Lines(string(out)) {
			if l = strings.TrimSpace(lifetimes.ReplaceAllString(l, "")); l != "" {
				lines = append(lines, l)
			}
		}
	}
	out, _ := exec.Command("ip", "netns", "list").Output() // no netns support: nothing of ours either
	for l := range strings.Lines(string(out)) {
		if strings.HasPrefix(l, fmt.Sprintf("nbd10%x-", os.Getpid())) {
			lines = append(lines, "netns "+strings.TrimSpace(l))
		}
	}
	for _, k := range []string{"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops"} {
		b, err := os.ReadFile("/proc/sys/" + k)
		lines = append(lines, fmt.Sprintf("sysctl %s: %q %v", k, strings.TrimSpace(string(b)), err))
	}
	for _, d := range []string{"/var/lib/kubelet", "/var/lib/containerd", "/var/lib/cni", "/run/containerd", "/etc/cni", "/opt/cni"} {
		ents, err := os.ReadDir(d)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		lines = append(lines, fmt.Sprintf("dir %s: %v exists=%v", d, names, err == nil))
	}
	return lines
}

// changes reports the lines only in before ("-") or only in after ("+").
func changes(before, after []string) string {
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
