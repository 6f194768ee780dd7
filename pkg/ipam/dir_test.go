package ipam

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// TestDirStaysInside: dir takes one name, or two under the index
// directory, never follows a symlink it meets, and reads a FIFO without
// blocking; removeAll clears a tree without leaving it through a symlink.
func TestDirStaysInside(t *testing.T) {
	base := t.TempDir()
	top, outside := filepath.Join(base, "net"), filepath.Join(base, "outside")
	for _, p := range []string{filepath.Join(top, indexDir, "sub", "deeper"), outside} {
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	writeTestFile(t, filepath.Join(outside, "secret"), "keep")
	writeTestFile(t, filepath.Join(top, indexDir, "sub", "deeper", "f"), "x")
	if err := os.Symlink(outside, filepath.Join(top, indexDir, "sub", "out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(top, "link")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(top, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := openDir(top)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	for _, bad := range []string{"", "..", "../outside", "a/b", indexDir + "/..", indexDir + "/a/b", "/etc/passwd"} {
		if _, err := d.open(bad, os.O_RDONLY, 0); err == nil {
			t.Errorf("open %q succeeded", bad)
		}
	}
	if _, err := d.readFile("link"); err == nil {
		t.Error("readFile followed a symlink")
	}
	if b, err := d.readFile("fifo"); err != nil || len(b) != 0 {
		t.Errorf("readFile of a FIFO = %q, %v; want empty at once", b, err)
	}
	if st, err := d.lstat("link"); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFLNK {
		t.Errorf("lstat followed a symlink: %+v, %v", st, err)
	}
	if err := d.setMtime("link", 1e9); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(filepath.Join(outside, "secret")); st.ModTime().Unix() == 1 {
		t.Error("setMtime changed a symlink's target")
	}
	if err := d.removeAll(indexDir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(top, indexDir)); !os.IsNotExist(err) {
		t.Errorf("index directory still there after removeAll: %v", err)
	}
	if names := listDir(t, outside); !slices.Equal(names, []string{"secret"}) || readTestFile(t, filepath.Join(outside, "secret")) != "keep" {
		t.Errorf("outside the store: %v; removeAll must not go through a symlink", names)
	}
	if err := d.removeAll("missing"); err != nil {
		t.Errorf("removeAll of a missing name: %v", err)
	}
}

// TestLinkUnnamedBothWays: an unnamed record gets its name by the
// descriptor itself and, for a plugin without CAP_DAC_READ_SEARCH, through
// /proc; either way a taken name is fs.ErrExist and the content is whole.
func TestLinkUnnamedBothWays(t *testing.T) {
	s, err := Open(t.TempDir(), "net")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for name, link := range map[string]func(int, *dir, string) error{"10.0.0.2": linkUnnamed, "10.0.0.3": linkViaProc} {
		anon, err := s.writeUnnamed("c\r\neth0")
		if errors.Is(err, errNoTmpfile) {
			t.Skip("no O_TMPFILE on this filesystem")
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := link(anon, s.root, name); err != nil {
			t.Fatalf("link as %s: %v", name, err)
		}
		if err := link(anon, s.root, name); !errors.Is(err, fs.ErrExist) {
			t.Errorf("link over %s = %v, want fs.ErrExist", name, err)
		}
		syscall.Close(anon)
		if got := readFile(t, s, name); got != "c\r\neth0" {
			t.Errorf("%s holds %q", name, got)
		}
	}
}

// Side files: dot names only, written in place (the directory's mtime, the
// index seal, moves only when one is first made), read whole up to a bound.
func TestSideFiles(t *testing.T) {
	s := newStore(t)
	if err := s.WriteSideFile("note", "x"); err == nil {
		t.Error("WriteSideFile of a name without a dot: no error")
	}
	if _, err := s.ReadSideFile("10.0.0.2", 10); err == nil {
		t.Error("ReadSideFile of an address's name: no error")
	}
	if err := s.WriteSideFile(".side", "first, longer"); err != nil {
		t.Fatal(err)
	}
	before, err := s.mtime(".")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WriteSideFile(".side", "second"); err != nil {
		t.Fatal(err)
	}
	if after, err := s.mtime("."); err != nil || after != before {
		t.Errorf("rewriting a side file moved the directory's mtime: %d -> %d (%v)", before, after, err)
	}
	if b, err := s.ReadSideFile(".side", 6); err != nil || string(b) != "second" {
		t.Errorf("ReadSideFile = %q, %v; want \"second\"", b, err)
	}
	if _, err := s.ReadSideFile(".side", 5); !errors.Is(err, errTooLong) {
		t.Errorf("ReadSideFile past its bound: %v, want errTooLong", err)
	}
}
