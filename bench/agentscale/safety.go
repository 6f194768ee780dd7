package main

import (
	"fmt"
	"os/exec"
	"regexp"
	"strings"
)

// rootState lists the machine's own links, addresses and routes, and the
// netns this process named, one line each, with the fields that change on
// their own removed: compared before and after, it shows the run left the
// root netns as it found it.
func rootState() []string {
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
		if strings.HasPrefix(l, netnsPrefix()) {
			lines = append(lines, "netns "+strings.TrimSpace(l))
		}
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
