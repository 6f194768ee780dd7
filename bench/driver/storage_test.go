package main

import (
	"os"
	"strings"
	"testing"
)

// probeCreate times its creations in a dir of its own and leaves nothing.
func TestProbeCreate(t *testing.T) {
	dir := t.TempDir()
	p50, err := probeCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p50 <= 0 || p50 > 1e6 {
		t.Errorf("create p50 = %v µs, want a time above 0 and below a second", p50)
	}
	if left, err := os.ReadDir(dir); err != nil || len(left) != 0 {
		t.Errorf("%s holds %v after the probe (%v), want nothing", dir, left, err)
	}
	if fs := fsName(dir); fs == "" || fs == "unknown" {
		t.Errorf("fsName(%s) = %q, want a filesystem", dir, fs)
	}
	s := storage{Dir: dir, FS: "ext4", CreateStart: 12.4, CreateEnd: 150}
	if got := s.String(); !strings.Contains(got, dir) || !strings.Contains(got, "12 µs before") || !strings.Contains(got, "150 µs after") {
		t.Errorf("String() = %q, want the dir and both figures", got)
	}
}

// A dir that cannot take files is an error, not a figure.
func TestProbeCreateMissingDir(t *testing.T) {
	if _, err := probeCreate(t.TempDir() + "/missing"); err == nil {
		t.Error("probeCreate of a missing dir: no error")
	}
}
