package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// rootState is what the bench must leave as it found it outside its own
// netns: the root netns's interface names and forwarding sysctls (the
// plugins set forwarding in their node), and the files under /var/lib/cni.
// It must run on a thread in the root netns, as every unlocked one is.
func rootState() (string, error) {
	var sb strings.Builder
	ifs, err := os.ReadDir("/sys/class/net")
	if err != nil {
		return "", fmt.Errorf("list root netns interfaces: %w", err)
	}
	for _, e := range ifs {
		sb.WriteString("link " + e.Name() + "\n")
	}
	for _, f := range []string{"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"} {
		b, _ := os.ReadFile(f) // unreadable reads as empty, before and after alike
		sb.WriteString(f + " " + strings.TrimSpace(string(b)) + "\n")
	}
	err = walkFiles("/var/lib/cni", func(p string) { sb.WriteString("file " + p + "\n") })
	return sb.String(), err
}

// walkFiles calls fn for every path under root; a missing root has none.
func walkFiles(root string, fn func(string)) error {
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list %s: %w", root, err)
	}
	for _, e := range entries {
		p := root + "/" + e.Name()
		fn(p)
		if e.IsDir() {
			if err := walkFiles(p, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// diffState lists the lines only in before ("-") or only in after ("+").
func diffState(before, after string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for l := range strings.Lines(s) {
			m[l] = true
		}
		return m
	}
	b, a := in(before), in(after)
	var sb strings.Builder
	for l := range strings.Lines(before) {
		if !a[l] {
			sb.WriteString("- " + l)
		}
	}
	for l := range strings.Lines(after) {
		if !b[l] {
			sb.WriteString("+ " + l)
		}
	}
	return sb.String()
}
