package ipam

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestOpenName(t *testing.T) {
	for _, name := range []string{"", ".", "..", "a/b", "../up", "/abs", "nul\x00x"} {
		t.Run(strconv.Quote(name), func(t *testing.T) {
			data := t.TempDir()
			s, err := Open(data, name)
			want := "name " + strconv.Quote(name) + ": not usable as a directory name"
			if name == "" {
				want = "name: empty"
			}
			if s != nil || !errors.Is(err, ErrInvalid) || err.Error() != want {
				t.Fatalf("Open(%q) = %v, %v; want %q wrapping ErrInvalid", name, s, err, want)
			}
			if entries, _ := os.ReadDir(data); len(entries) != 0 {
				t.Errorf("Open(%q) created %v", name, entries)
			}
		})
	}
}

func TestOpenCreates(t *testing.T) {
	data := filepath.Join(t.TempDir(), "deep", "data")
	s, err := Open(data, "cbr0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if s.Dir() != filepath.Join(data, "cbr0") {
		t.Errorf("Dir = %s", s.Dir())
	}
	for _, dir := range []string{data, s.Dir()} {
		fi, err := os.Stat(dir)
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755&^umask(t) {
			t.Errorf("%s: %v, %v; want a directory with mode 0755 less umask", dir, fi.Mode(), err)
		}
	}
	// A second Open, by us or the reference, uses what is there.
	s2, err := Open(data, "cbr0")
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
}

// umask reads the process umask without changing it.
func umask(t *testing.T) fs.FileMode {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			if err != nil {
				t.Fatal(err)
			}
			return fs.FileMode(m)
		}
	}
	t.Fatal("no Umask in /proc/self/status")
	return 0
}

func TestRecordFormat(t *testing.T) {
	forClaimFiles(t, func(t *testing.T) {
		p, s := poolOf(t, "10.0.0.0/24", "fd00::/64"), newStore(t)
		mustAlloc(t, s, p, Attachment{ContainerID: "  ctr-1\t", IfName: "net1"})
		tests := []struct{ name, content string }{
			{"10.0.0.2", "ctr-1\r\nnet1"},
			{"fd00::2", "ctr-1\r\nnet1"},
			{"last_reserved_ip.0", "10.0.0.2"},
			{"last_reserved_ip.1", "fd00::2"},
		}
		for _, tt := range tests {
			b, err := os.ReadFile(filepath.Join(s.Dir(), tt.name))
			if err != nil || string(b) != tt.content {
				t.Errorf("%s holds %q, %v; want %q", tt.name, b, err, tt.content)
			}
			if fi, err := os.Lstat(filepath.Join(s.Dir(), tt.name)); err != nil || fi.Mode() != 0o600 {
				t.Errorf("%s: mode %v, %v; want a 0600 regular file", tt.name, fi.Mode(), err)
			}
		}
		want := []string{"10.0.0.2", "fd00::2", "last_reserved_ip.0", "last_reserved_ip.1", "lock"}
		if names := dirNames(t, s); !slices.Equal(names, want) {
			t.Errorf("directory %v, want %v (no temp files left)", names, want)
		}
		if got := mustLookup(t, s, Attachment{ContainerID: "ctr-1", IfName: "net1"}); !slices.Equal(got, addrs("10.0.0.2", "fd00::2")) {
			t.Errorf("Lookup with the trimmed ID = %v", got)
		}
	})
}

func TestIgnoredAndForeignFiles(t *testing.T) {
	s := newStore(t)
	outside := filepath.Join(t.TempDir(), "victim")
	writeTestFile(t, outside, "ctr9\r\neth0")
	for name, content := range map[string]string{
		"last_reserved_ip.0": "10.0.0.7",
		".tmp-abandoned":     "ctr8\r\neth0",
		"README":             "ctr8\r\neth0",
		"10.0.0.300":         "ctr8\r\neth0",
		"10.0.0.4":           "ctr1\r\neth0\n", // trailing newline: trimmed as the reference does
	} {
		writeFile(t, s, name, content)
	}
	if err := os.Symlink(outside, filepath.Join(s.Dir(), "10.0.0.3")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(s.Dir(), "10.0.0.5"), 0o700); err != nil {
		t.Fatal(err)
	}
	got, err := s.Attachments()
	if want := []Attachment{att("ctr1")}; err != nil || !slices.Equal(got, want) {
		t.Errorf("Attachments = %v, %v; want %v", got, err, want)
	}
	if got := mustRelease(t, s, att("ctr9")); len(got) != 0 {
		t.Errorf("Release through a symlink freed %v", got)
	}
	// .1 is the gateway; .3 (symlink), .4 (record) and .5 (directory) are taken.
	p := mustPool(t, Config{Subnet: "10.0.0.0/24", RangeEnd: "10.0.0.6"})
	var got2 []netip.Addr
	for _, id := range []string{"pod1", "pod2"} {
		got2 = append(got2, mustAlloc(t, s, p, att(id))...)
	}
	if want := addrs("10.0.0.2", "10.0.0.6"); !slices.Equal(got2, want) {
		t.Errorf("Allocate = %v, want %v", got2, want)
	}
	if _, err := s.Allocate(p, att("pod3"), nil); !errors.Is(err, ErrExhausted) {
		t.Errorf("Allocate with every address taken: %v; want ErrExhausted", err)
	}
	if b, err := os.ReadFile(outside); err != nil || string(b) != "ctr9\r\neth0" {
		t.Errorf("file outside the store now holds %q, %v", b, err)
	}
}

func TestSymlinkedLastReserved(t *testing.T) {
	// A planted last_reserved_ip.0 symlink is replaced, never written through.
	s := newStore(t)
	outside := filepath.Join(t.TempDir(), "victim")
	writeTestFile(t, outside, "keep")
	if err := os.Symlink(outside, filepath.Join(s.Dir(), "last_reserved_ip.0")); err != nil {
		t.Fatal(err)
	}
	mustAlloc(t, s, poolOf(t, "10.0.0.0/24"), att("pod"))
	if b, err := os.ReadFile(outside); err != nil || string(b) != "keep" {
		t.Errorf("file outside the store now holds %q, %v", b, err)
	}
	if fi, err := os.Lstat(filepath.Join(s.Dir(), "last_reserved_ip.0")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("last_reserved_ip.0: %v, %v; want a regular file", fi.Mode(), err)
	}
}

func TestClaimNeverReplaces(t *testing.T) {
	forClaimFiles(t, func(t *testing.T) {
		s := newStore(t)
		addr := netip.MustParseAddr("10.0.0.2")
		for i, want := range []bool{true, false} {
			c := s.newClaim(att(strconv.Itoa(i)))
			ok, err := c.take(addr)
			if err := errors.Join(err, c.close()); err != nil || ok != want {
				t.Fatalf("claim #%d = %v, %v; want %v", i, ok, err, want)
			}
		}
		if got := readFile(t, s, "10.0.0.2"); got != "0\r\neth0" {
			t.Errorf("record holds %q, want the first writer's", got)
		}
		if names := dirNames(t, s); !slices.Equal(names, []string{"10.0.0.2", "lock"}) {
			t.Errorf("directory %v: temp files left behind", names)
		}
	})
}

// A claim's content is in an unnamed file where the filesystem has them:
// while the claim is open, only the records it made have names. With a
// named temp file, that file is there until close.
func TestClaimFile(t *testing.T) {
	for _, unnamed := range []bool{true, false} {
		t.Run(fmt.Sprintf("unnamed=%v", unnamed), func(t *testing.T) {
			setUseTmpfile(t, unnamed)
			s := newStore(t)
			c := s.newClaim(att("1"))
			for _, a := range []string{"10.0.0.2", "10.0.0.3"} { // the same content under two names
				if ok, err := c.take(netip.MustParseAddr(a)); err != nil || !ok {
					t.Fatalf("take %s = %v, %v", a, ok, err)
				}
			}
			temps := 0
			for _, n := range dirNames(t, s) {
				if strings.HasPrefix(n, tmpPrefix) {
					temps++
				}
			}
			if want := map[bool]int{true: 0, false: 1}[unnamed]; temps != want {
				t.Errorf("%d temp files while the claim is open, want %d (%v)", temps, want, dirNames(t, s))
			}
			if err := c.close(); err != nil {
				t.Fatal(err)
			}
			for _, a := range []string{"10.0.0.2", "10.0.0.3"} {
				if got := readFile(t, s, a); got != "1\r\neth0" {
					t.Errorf("%s holds %q", a, got)
				}
			}
			if names := dirNames(t, s); !slices.Equal(names, []string{"10.0.0.2", "10.0.0.3", "lock"}) {
				t.Errorf("directory %v after close, want the two records", names)
			}
		})
	}
}

// forClaimFiles runs f with the claim's unnamed file and with its named
// temp file.
func forClaimFiles(t *testing.T, f func(t *testing.T)) {
	for _, unnamed := range []bool{true, false} {
		t.Run(fmt.Sprintf("unnamed=%v", unnamed), func(t *testing.T) {
			setUseTmpfile(t, unnamed)
			f(t)
		})
	}
}

func setUseTmpfile(t *testing.T, on bool) {
	old := useTmpfile
	useTmpfile = on
	t.Cleanup(func() { useTmpfile = old })
}
