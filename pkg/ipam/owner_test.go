package ipam

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpenRefusesUnsafeDir: a network directory another user owns, or
// that group or others may write, is refused with ErrUnsafeDir naming the
// directory, what is wrong and the fix; the directory is left as found.
func TestOpenRefusesUnsafeDir(t *testing.T) {
	for _, tt := range []struct {
		name  string
		mode  os.FileMode
		uid   int // -1: the effective user's
		wants []string
	}{
		{"mode 0777", 0o777, -1, []string{"writable by group and others", "chmod go-w"}},
		{"mode 0775", 0o775, -1, []string{"writable by group;"}},
		{"sticky 1777", 0o777 | os.ModeSticky, -1, []string{"writable by group and others"}},
		{"owned by uid 1000", 0o755, 1000, []string{"owned by uid 1000;", "chown"}},
		{"owned by uid 1000 and 0757", 0o757, 1000, []string{"owned by uid 1000, writable by others"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.uid >= 0 && os.Geteuid() != 0 {
				if os.Getenv("CI") == "true" {
					t.Fatal("needs root to chown")
				}
				t.Skip("needs root to chown")
			}
			dataDir := t.TempDir()
			dir := filepath.Join(dataDir, "net")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, tt.mode); err != nil {
				t.Fatal(err)
			}
			if tt.uid >= 0 {
				if err := os.Chown(dir, tt.uid, tt.uid); err != nil {
					t.Fatal(err)
				}
			}
			st, err := Open(dataDir, "net")
			if err == nil {
				st.Close()
				t.Fatalf("Open of a %s network directory succeeded", tt.name)
			}
			if !errors.Is(err, ErrUnsafeDir) || !strings.Contains(err.Error(), dir+": ") {
				t.Errorf("Open error = %v, want ErrUnsafeDir naming %s", err, dir)
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Open error = %v, want it to say %q", err, w)
				}
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("Open wrote into the refused directory: %v", entries)
			}
		})
	}
}

// TestOpenAcceptsOwnDir: a directory the reference host-local made (0755,
// the same user) or Open made itself is used.
func TestOpenAcceptsOwnDir(t *testing.T) {
	dataDir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dataDir, "ref"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ref", "new"} {
		st, err := Open(dataDir, name)
		if err != nil {
			t.Fatalf("Open %s: %v", name, err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
