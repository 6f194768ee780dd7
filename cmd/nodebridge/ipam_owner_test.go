package main_test

import (
	"os"
	"path/filepath"
	"testing"
)

// TestUnsafeNetworkDir: a network directory that is world-writable, or
// owned by another user, is refused by ADD and DEL alike with code 999
// naming it and the fix; ADD leaves no veth or file behind.
func TestUnsafeNetworkDir(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		uid  int
		mode os.FileMode
		want string
	}{
		{"chmod 0777", 0, 0o777, "writable by group and others"},
		{"chown 1000", 1000, 0o755, "owned by uid 1000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, podSubnet)
			dir := filepath.Join(f.dataDir, f.name)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(dir, tc.uid, tc.uid); err != nil {
				t.Fatal(err)
			}
			p := f.newPod()
			msgs := []string{dir + ": " + tc.want, "chown root and chmod go-w it, or remove it"}
			wantCNIError(t, f.run(f.callFor("ADD", p, f.conf("1.1.0"))), 999, msgs)
			wantCNIError(t, f.run(f.callFor("DEL", p, f.conf("1.1.0"))), 999, msgs)
			if v := vethNames(t, f.node); len(v) > 0 {
				t.Errorf("veths left in the node after the refused ADD: %v", v)
			}
			wantOnlyLoopback(t, p)
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("the plugin wrote into the refused directory: %v", entries)
			}
		})
	}
}
