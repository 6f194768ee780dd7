package bridge

import (
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/nodebridge/nodebridge/pkg/ipam"
)

// sideStore opens a store in a temp dir, closed when t ends.
func sideStore(t *testing.T) *ipam.Store {
	t.Helper()
	st, err := ipam.Open(t.TempDir(), "net")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestVerifiedRecord(t *testing.T) {
	st := sideStore(t)
	dir := st.Dir()
	if got := readVerified(st); got != (verified{}) {
		t.Errorf("readVerified before any write = %+v, want empty", got)
	}
	long := verified{"stamp", strings.Repeat("10.0.0.0/8 ", 1000)} // many nonMasqueradeCIDRs
	for _, v := range []verified{{"a long first stamp 1234567890", "fp 1"}, long, {"short", ""}, {"", "fp only"}, {}} {
		if err := writeVerified(st, v); err != nil {
			t.Fatal(err)
		}
		if got := readVerified(st); got != v {
			t.Errorf("readVerified = %+v, want %+v", got, v)
		}
	}
	path := filepath.Join(dir, verifiedFile)
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("record %s: %v, mode %v; want 0600", path, err, info.Mode())
	}
	line := "short | fp"
	for name, torn := range map[string]string{
		"no newline":    line + "\t" + checksum(line),
		"bad checksum":  "shorx | fp\t" + checksum(line) + "\n",
		"mixed content": line + "a long first\t" + checksum(line) + "\n",
		"no checksum":   line + "\n",
	} {
		if err := os.WriteFile(path, []byte(torn), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := readVerified(st); got != (verified{}) {
			t.Errorf("%s: readVerified = %+v, want empty", name, got)
		}
	}
	// A FIFO or a symlink planted at the name reads as no record, at once.
	for name, plant := range map[string]func() error{
		"fifo":    func() error { return syscall.Mkfifo(path, 0o600) },
		"symlink": func() error { return os.Symlink(filepath.Join(dir, "elsewhere"), path) },
	} {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if err := plant(); err != nil {
			t.Fatal(err)
		}
		if got := readVerified(st); got != (verified{}) {
			t.Errorf("%s: readVerified = %+v, want empty", name, got)
		}
	}
	for _, bad := range []verified{{"two\nlines", ""}, {"", "tab\there"}} {
		if err := writeVerified(st, bad); err == nil {
			t.Errorf("writeVerified(%+v) succeeded", bad)
		}
	}
}

// TestVerifiedInvisibleToStore: the record is neither an allocation of
// pkg/ipam's store nor a reason to rebuild its index after it first exists.
func TestVerifiedInvisibleToStore(t *testing.T) {
	st := sideStore(t)
	if err := writeVerified(st, verified{"x", "y"}); err != nil {
		t.Fatal(err)
	}
	if as, err := st.Attachments(); err != nil || len(as) != 0 {
		t.Errorf("Attachments with only the record = %v, %v; want none", as, err)
	}
	if empty, err := st.Empty(); err != nil || !empty {
		t.Errorf("Empty with only the record = %v, %v; want true", empty, err)
	}
	before, _ := os.Stat(st.Dir())
	if err := writeVerified(st, verified{"z", "y"}); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(st.Dir())
	if !after.ModTime().Equal(before.ModTime()) {
		t.Error("rewriting the record changed the network directory's mtime (the index stamp)")
	}
}

// FuzzVerified reads arbitrary record files: a record read back is exactly
// what the file's one checksummed line holds, else empty.
func FuzzVerified(f *testing.F) {
	seeds, err := filepath.Glob("../../testdata/corpus/store/note-*.txt")
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no note seeds in testdata/corpus/store: %v", err)
	}
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, content []byte) {
		st := sideStore(t)
		if err := os.WriteFile(filepath.Join(st.Dir(), verifiedFile), content, 0o600); err != nil {
			t.Fatal(err)
		}
		got := readVerified(st)
		if got == (verified{}) {
			return
		}
		v, _, _ := strings.Cut(string(content), "\t")
		stamp, fp, _ := strings.Cut(v, " | ")
		if string(content) != v+"\t"+checksum(v)+"\n" || got != (verified{stamp, fp}) {
			t.Fatalf("read %+v from a file holding %q", got, content)
		}
	})
}

// checksum is hash/crc32's IEEE checksum, so records written before it
// was computed here still verify.
func TestChecksumIsCRC32(t *testing.T) {
	for _, v := range []string{"", "a", "nft 7655a1a4-fb60-4907-afef-85aabcbeb9ed 4:4026532174 4 *rules.nftPrimary [10.244.0.0/16] []", strings.Repeat("\xff\x00", 300)} {
		if got, want := checksum(v), fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(v))); got != want {
			t.Errorf("checksum(%q) = %s, want %s", v, got, want)
		}
	}
}
