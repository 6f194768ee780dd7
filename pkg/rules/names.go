package rules

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// The plugin and the agent check the names the rules are built from with
// the functions below, so that the agent refuses what the plugin refuses.
// Each caller names its own field (a JSON path, a flag) in front of the
// error.

// MaxIfName is the longest interface name the kernel takes: IFNAMSIZ less
// the terminating NUL.
const MaxIfName = 15

const (
	maxName  = 200 // a network name is a file name (255) and part of a 256-byte iptables comment
	nameRule = `must match ^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`
)

// CheckName enforces ^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$ and at most 200 bytes,
// for names that become directory names and rule comments: a network name,
// a container ID.
func CheckName(s string) error {
	if s == "" {
		return errors.New("required")
	}
	if len(s) > maxName {
		return fmt.Errorf("longer than %d bytes", maxName)
	}
	for i := range len(s) {
		b := s[i]
		alnum := 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
		if !alnum && (i == 0 || (b != '_' && b != '.' && b != '-')) {
			return errors.New(nameRule)
		}
	}
	return nil
}

// CheckIfName enforces the kernel's rules for an interface name.
func CheckIfName(s string) error {
	switch {
	case s == "":
		return errors.New("required")
	case len(s) > MaxIfName:
		return fmt.Errorf("longer than %d bytes", MaxIfName)
	case s == "." || s == ".." || s == "all" || s == "default":
		return fmt.Errorf("%q is not an interface name (the kernel reserves it)", s)
	case strings.ContainsFunc(s, func(r rune) bool { return r == '/' || r == ':' || r == 0 || unicode.IsSpace(r) }):
		return errors.New("contains '/', ':', NUL or whitespace")
	}
	return nil
}
