package netnstest

import (
	"strings"
	"testing"
)

func TestDiffLines(t *testing.T) {
	tests := []struct {
		name string
		a, b []string
		want string
	}{
		{"same", []string{"x", "y"}, []string{"y", "x"}, ""},
		{"added", []string{"x"}, []string{"x", "veth1"}, "+ veth1\n"},
		{"removed", []string{"x", "rule"}, []string{"x"}, "- rule\n"},
		{"duplicate added", []string{"j"}, []string{"j", "j"}, "+ j\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := diffLines(tt.a, tt.b); got != tt.want {
				t.Errorf("diffLines = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFingerprintStripsCounters(t *testing.T) {
	for _, l := range fingerprint() {
		if strings.Contains(l, "valid_lft") {
			t.Errorf("fingerprint kept a volatile field: %q", l)
		}
	}
}

func TestOthersNetns(t *testing.T) {
	list := []string{"ip", "netns", "list"}
	tests := []struct {
		line string
		want bool
	}{
		{"nb1-node-abcdef (id: 3)", ownPrefix() != "nb1-"},
		{ownPrefix() + "node-abcdef", false},
		{"nb-demo-node", false},
		{"blue", false},
	}
	for _, tt := range tests {
		if got := othersNetns(list, tt.line); got != tt.want {
			t.Errorf("othersNetns(%q) = %v, want %v", tt.line, got, tt.want)
		}
	}
	if othersNetns([]string{"ip", "-o", "link", "show"}, "nb1-x") {
		t.Error("othersNetns filtered a line that is not from ip netns list")
	}
}
