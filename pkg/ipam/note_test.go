package ipam

import (
	"os"
	"path/filepath"
	"testing"
)

func TestNote(t *testing.T) {
	s, err := Open(t.TempDir(), "net")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.Note("rules"); got != "" {
		t.Errorf("Note before any SetNote = %q, want empty", got)
	}
	for _, v := range []string{"a long first value 1234567890", "short", ""} {
		if err := s.SetNote("rules", v); err != nil {
			t.Fatal(err)
		}
		if got := s.Note("rules"); got != v {
			t.Errorf("Note = %q, want %q", got, v)
		}
	}
	path := filepath.Join(s.Dir(), notePrefix+"rules")
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("note file %s: %v, mode %v; want 0600", path, err, info.Mode())
	}
	for name, torn := range map[string]string{
		"no newline":    "short\t" + noteSum("short"),
		"bad checksum":  "shorx\t" + noteSum("short") + "\n",
		"mixed content": "shorta long first\t" + noteSum("short") + "\n",
		"no checksum":   "short\n",
	} {
		if err := os.WriteFile(path, []byte(torn), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := s.Note("rules"); got != "" {
			t.Errorf("%s: Note = %q, want empty", name, got)
		}
	}
	for _, bad := range [][2]string{{"", "v"}, {"a/b", "v"}, {"k", "two\nlines"}, {"k", "tab\there"}} {
		if err := s.SetNote(bad[0], bad[1]); err == nil {
			t.Errorf("SetNote(%q, %q) succeeded", bad[0], bad[1])
		}
	}
}

// TestNoteInvisibleToAllocations: a note is neither an allocation nor a
// reason to rebuild the index after it first exists.
func TestNoteInvisibleToAllocations(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, "net")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.SetNote("rules", "x"); err != nil {
		t.Fatal(err)
	}
	if as, err := s.Attachments(); err != nil || len(as) != 0 {
		t.Errorf("Attachments with only a note = %v, %v; want none", as, err)
	}
	if empty, err := s.Empty(); err != nil || !empty {
		t.Errorf("Empty with only a note = %v, %v; want true", empty, err)
	}
	before, _ := os.Stat(s.Dir())
	if err := s.SetNote("rules", "y"); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(s.Dir())
	if !after.ModTime().Equal(before.ModTime()) {
		t.Error("rewriting a note changed the network directory's mtime (the index stamp)")
	}
}
