package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseFlagsFlannel(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.WriteFile(bin, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	o, err := parseFlags([]string{"-agent", bin})
	if err != nil || o.flannel != "" {
		t.Fatalf("no -flannel: %+v, %v; want no comparison", o, err)
	}
	o, err = parseFlags([]string{"-agent", bin, "-flannel", bin})
	if err != nil || o.flannel != bin {
		t.Fatalf("-flannel %s: flannel %q, %v", bin, o.flannel, err)
	}
	_, err = parseFlags([]string{"-agent", bin, "-flannel", filepath.Join(dir, "missing"), "-singles", "0"})
	if err == nil || !strings.Contains(err.Error(), "-flannel") || !strings.Contains(err.Error(), "-singles 0") {
		t.Fatalf("a missing -flannel and -singles 0: %v, want both named", err)
	}
}
