package rules

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// TestStampFollowsRuleChanges: the stamp stays while nothing changes and
// moves with any rule change in the netns, ours or another tool's.
func TestStampFollowsRuleChanges(t *testing.T) {
	if iptablesVariant() != variantNFT {
		t.Skip("iptables here is not the nf_tables variant: Stamp is always empty")
	}
	name := testenv.NewNS(t, "stamp")
	stamp := func() string {
		t.Helper()
		var s string
		err := ns.WithNetNSPath(testenv.Path(name), func(ns.NetNS) error {
			var err error
			s, err = New(nil).Stamp(context.Background())
			return err
		})
		if err != nil || !strings.HasPrefix(s, "nft ") {
			t.Fatalf("Stamp = %q, %v", s, err)
		}
		return s
	}
	first := stamp()
	if again := stamp(); again != first {
		t.Errorf("stamp moved with no change: %q then %q", first, again)
	}
	testenv.Run(t, name, "iptables", "-w", "-N", "SOMEONE-ELSE")
	changed := stamp()
	if changed == first {
		t.Errorf("stamp %q did not move after another tool added a chain", first)
	}
	testenv.Run(t, name, "iptables", "-w", "-X", "SOMEONE-ELSE")
	if stamp() == changed {
		t.Error("stamp did not move after the chain was removed")
	}
}

// TestNFTStampFollowsRuleChanges: the nftables backend's stamp moves with
// nftables and iptables-nft changes alike, and is empty where it cannot
// vouch for the rules: iptables-legacy, or another netns programmed by fd.
func TestNFTStampFollowsRuleChanges(t *testing.T) {
	name := testenv.NewNS(t, "stamp")
	stampOf := func(b Stamper) string {
		t.Helper()
		var s string
		err := ns.WithNetNSPath(testenv.Path(name), func(ns.NetNS) error {
			var err error
			s, err = b.Stamp(context.Background())
			return err
		})
		if err != nil {
			t.Fatalf("Stamp: %v", err)
		}
		return s
	}
	b := newNFTPrimary(nil, ModeInstalled)
	b.variant = func() string { return variantNFT }
	first := stampOf(b)
	if !strings.HasPrefix(first, "nft ") || stampOf(b) != first {
		t.Fatalf("Stamp = %q, then %q; want a stable nft stamp", first, stampOf(b))
	}
	for _, change := range [][]string{{"nft", "add table inet someone"}, {"iptables", "-w", "-P", "FORWARD", "DROP"}} {
		testenv.Run(t, name, change...)
		if now := stampOf(b); now == first || now == "" {
			t.Errorf("stamp %q after %q, want a new one", now, change)
		} else {
			first = now
		}
	}
	b.variant = func() string { return variantLegacy }
	if s := stampOf(b); s != "" {
		t.Errorf("Stamp with iptables-legacy = %q, want empty", s)
	}
	if s := stampOf(nftIn(t, name)); s != "" {
		t.Errorf("Stamp of a backend programming a netns by fd = %q, want empty", s)
	}
}

// iptablesVariant finds iptables-save as exec would (the first executable
// one in an absolute PATH entry) and names the variant its links end at.
func TestIPTablesVariantFollowsLinks(t *testing.T) {
	root := t.TempDir()
	mk := func(path string, mode os.FileMode) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, nil, mode); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, path string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, path); err != nil {
			t.Fatal(err)
		}
	}
	mk(root+"/sbin/xtables-nft-multi", 0o755)
	mk(root+"/sbin/xtables-legacy-multi", 0o755)
	link("xtables-nft-multi", root+"/sbin/iptables-nft-save") // relative, as Debian has it
	link(root+"/sbin/iptables-nft-save", root+"/alternatives/iptables-save")
	link(root+"/alternatives/iptables-save", root+"/nft/iptables-save")
	link("../sbin/xtables-legacy-multi", root+"/legacy/iptables-save")
	mk(root+"/noexec/iptables-save", 0o644)
	link("nowhere", root+"/dangling/iptables-save")
	mk(root+"/empty/.keep", 0o644)
	for _, tt := range []struct{ path, want string }{
		{root + "/empty:" + root + "/nft", variantNFT},
		{root + "/legacy:" + root + "/nft", variantLegacy},
		{root + "/noexec:" + root + "/dangling:" + root + "/legacy", variantLegacy},
		{"relative:" + root + "/nft", variantNFT},
		{root + "/empty", variantNone},
		{"", variantNone},
	} {
		t.Setenv("PATH", tt.path)
		if got := iptablesVariant(); got != tt.want {
			t.Errorf("PATH=%s: iptablesVariant = %q, want %q", tt.path, got, tt.want)
		}
	}
}

// On this machine the variant is what exec.LookPath and EvalSymlinks see.
func TestIPTablesVariantAsLookPath(t *testing.T) {
	want := variantNone
	if p, err := exec.LookPath("iptables-save"); err == nil {
		want = variantLegacy
		if real, err := filepath.EvalSymlinks(p); err == nil && strings.Contains(filepath.Base(real), "nft") {
			want = variantNFT
		}
	}
	if got := iptablesVariant(); got != want {
		t.Errorf("iptablesVariant = %q, LookPath and EvalSymlinks say %q", got, want)
	}
}

// TestGenerationNamesItsNetns: the netns a stamp names is the caller's, as
// /proc shows it, and differs between two netns.
func TestGenerationNamesItsNetns(t *testing.T) {
	var ids [][2]uint64
	for _, name := range []string{testenv.NewNS(t, "stamp-a"), testenv.NewNS(t, "stamp-b")} {
		err := ns.WithNetNSPath(testenv.Path(name), func(ns.NetNS) error {
			_, id, err := nftGenerationOf(0, true)
			if err != nil {
				return err
			}
			var st syscall.Stat_t
			if err := syscall.Stat("/proc/thread-self/ns/net", &st); err != nil {
				return err
			}
			if id != [2]uint64{st.Dev, st.Ino} {
				t.Errorf("netns %s: generation names %v, /proc says %d:%d", name, id, st.Dev, st.Ino)
			}
			ids = append(ids, id)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if ids[0] == ids[1] {
		t.Errorf("two netns named alike: %v", ids[0])
	}
}
