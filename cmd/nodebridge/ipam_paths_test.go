package main_test

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestRequestCannotEscapeDataDir sends names and addresses built to reach
// outside <dataDir>/<network>: each is refused with code 4 (CNI_* env) or 7
// (config), and nothing appears or changes anywhere around the dataDir.
// Odd but harmless names are served, with every file inside the network
// directory.
func TestRequestCannotEscapeDataDir(t *testing.T) {
	t.Parallel()
	for _, tt := range escapeCases() {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, podSubnet)
			base := filepath.Dir(filepath.Dir(f.jailDataDir()))
			conf := f.conf("1.1.0")
			c := f.callFor("ADD", f.newPod(), conf)
			tt.edit(conf, &c)
			c.Conf = mustJSON(t, conf)
			before := tree(t, base)

			o := f.run(c)
			if tt.wantCode == 0 {
				mustSucceed(t, o, "ADD")
				if got := len(f.records()); got != 1 {
					t.Errorf("%d allocation files in %s, want 1", got, f.netDir())
				}
			} else if e := mustError(t, o); e.Code != tt.wantCode {
				t.Errorf("code %d (%s), want %d", e.Code, e.Msg, tt.wantCode)
			}
			f.wantChangesOnlyIn(base, before, f.netDir())

			c.Command = "DEL"
			f.run(c) // its outcome does not matter here: only where it writes
			f.wantChangesOnlyIn(base, before, f.netDir())
			f.assertNoAttachments()
		})
	}
}

// escapeCase is one request built to reach outside the network directory,
// and the code it must get (0: it is harmless and served).
type escapeCase struct {
	name     string
	edit     func(conf map[string]any, c *call)
	wantCode uint
}

func escapeCases() []escapeCase {
	long := strings.Repeat("a", 300)
	return []escapeCase{
		{"network ../../escape", setConf("name", "../../escape"), 7},
		{"network with a slash", setConf("name", "nb/../../escape"), 7},
		{"network ..", setConf("name", ".."), 7},
		{"network with NUL", setConf("name", "nb\x00../escape"), 7},
		{"network 300 bytes", setConf("name", long), 7},
		{"container ID ../../escape", func(_ map[string]any, c *call) { c.ContainerID = "../../escape" }, 4},
		{"container ID with a slash", func(_ map[string]any, c *call) { c.ContainerID = "ctr/../../escape" }, 4},
		{"container ID with a line break", func(_ map[string]any, c *call) { c.ContainerID = "ctr\n../escape" }, 4},
		{"container ID with a control byte", func(_ map[string]any, c *call) { c.ContainerID = "ctr\x01escape" }, 4},
		{"container ID 300 bytes", func(_ map[string]any, c *call) { c.ContainerID = long }, 4},
		{"ifname ../eth0", func(_ map[string]any, c *call) { c.IfName = "../eth0" }, 4},
		{"ifname ..", func(_ map[string]any, c *call) { c.IfName = ".." }, 4},
		{"ifname 300 bytes", func(_ map[string]any, c *call) { c.IfName = long }, 4},
		{"CNI_ARGS IP a path", func(_ map[string]any, c *call) { c.Args = "IP=../../escape" }, 4},
		{"runtimeConfig.ips a path", setConf("runtimeConfig", map[string]any{"ips": []string{"10.244.0.5/../../escape"}}), 7},
		{"args.cni.ips with a zone", setConf("args", map[string]any{"cni": map[string]any{"ips": []string{"fe80::1%../../escape"}}}), 7},
		{"dotted container ID and ifname", func(_ map[string]any, c *call) { c.ContainerID, c.IfName = "x..y", "..eth0" }, 0},
		{"dataDir not clean", func(conf map[string]any, _ *call) {
			ipam := conf["ipam"].(map[string]any)
			ipam["dataDir"] = ipam["dataDir"].(string) + "/../x/../cni/"
		}, 0},
	}
}

// setConf is an edit that sets a top-level config field.
func setConf(field string, value any) func(map[string]any, *call) {
	return func(conf map[string]any, _ *call) { conf[field] = value }
}

// jailDataDir moves f's dataDir two levels down a fresh temp dir,
// <base>/data/cni, so that "../../x" from its network directory lands in
// <base>, where tree sees it; it returns the new dataDir.
func (f *fixture) jailDataDir() string {
	f.t.Helper()
	f.dataDir = filepath.Join(f.t.TempDir(), "data", "cni")
	if err := os.MkdirAll(f.dataDir, 0o755); err != nil {
		f.t.Fatal(err)
	}
	return f.dataDir
}

// tree describes every path under root: a directory, a symlink and its
// target, or a regular file's mode and content.
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			out[path] = "symlink -> " + target
			return err
		case d.IsDir():
			out[path] = "dir " + info.Mode().String()
		default:
			b, err := os.ReadFile(path)
			out[path] = info.Mode().String() + " " + string(b)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return out
}

// wantChangesOnlyIn fails the test if any path under base outside allowed
// was created, changed or removed since before.
func (f *fixture) wantChangesOnlyIn(base string, before map[string]string, allowed string) {
	f.t.Helper()
	after := tree(f.t, base)
	for _, p := range slices.Sorted(maps.Keys(mergeKeys(before, after))) {
		if before[p] == after[p] || p == allowed || strings.HasPrefix(p, allowed+"/") {
			continue
		}
		f.t.Errorf("%s changed outside %s: was %q, now %q", p, allowed, before[p], after[p])
	}
}

func mergeKeys(a, b map[string]string) map[string]string {
	m := maps.Clone(a)
	maps.Copy(m, b)
	return m
}

// TestStoreSymlinksNotFollowed plants symlinks pointing outside in the
// network directory, where the store writes: at the addresses an ADD would
// take next, at last_reserved_ip.0, and at nodebridge's index directory.
// ADD, DEL and GC must write through none of them: the files outside stay
// as they were, and no absent target is created. ADD takes another address.
func TestStoreSymlinksNotFollowed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, podSubnet)
	outside := filepath.Join(filepath.Dir(filepath.Dir(f.jailDataDir())), "outside")
	if err := os.MkdirAll(filepath.Join(outside, "index"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"victim", "reserved"} {
		if err := os.WriteFile(filepath.Join(outside, name), []byte("untouched "+name), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(f.netDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	plant(t, f.netDir(), map[string]string{
		"10.244.0.2":         filepath.Join(outside, "victim"),
		"10.244.0.3":         filepath.Join(outside, "absent"),
		"last_reserved_ip.0": filepath.Join(outside, "reserved"),
		indexDirName:         filepath.Join(outside, "index"),
	})
	before := tree(t, outside)

	p := f.newPod()
	res, _ := f.add(p)
	if got := res.IPs[0].Address.IP.String(); got == "10.244.0.2" || got == "10.244.0.3" {
		t.Errorf("ADD took %s, a name held by a planted symlink", got)
	}
	wantTree(t, outside, before, "after ADD")
	f.del(p)
	wantTree(t, outside, before, "after DEL")
	f.gc(f.conf("1.1.0"))
	wantTree(t, outside, before, "after GC")
	for _, name := range []string{"10.244.0.2", "10.244.0.3"} {
		// Whatever the plugins make of them, they are not allocations to check for.
		if err := os.Remove(filepath.Join(f.netDir(), name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
	}
	f.assertNoAttachments()
}

// TestStoreLockSymlinkNotFollowed plants the lock file as a symlink to an
// absent file outside: ADD must not create it, and if it cannot lock the
// store it fails with nothing left in the node or the pod.
func TestStoreLockSymlinkNotFollowed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, podSubnet)
	outside := filepath.Join(filepath.Dir(filepath.Dir(f.jailDataDir())), "outside-lock")
	if err := os.MkdirAll(f.netDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	plant(t, f.netDir(), map[string]string{"lock": outside})
	p := f.newPod()
	o := f.run(f.callFor("ADD", p, f.conf("1.1.0")))
	if o.Code != 0 {
		t.Logf("ADD with the lock a symlink out of the store: %s", o.Stdout)
		if got := ipAddrs(t, p.ns); len(got) != 1 {
			t.Errorf("failed ADD left interfaces in the pod: %v", got)
		}
	}
	if _, err := os.Lstat(outside); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ADD created %s through the planted lock symlink (lstat: %v)", outside, err)
	}
	f.run(f.callFor("DEL", p, f.conf("1.1.0"))) // only where it writes matters
	if _, err := os.Lstat(outside); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("DEL created %s through the planted lock symlink (lstat: %v)", outside, err)
	}
	f.assertNoAttachments()
}

// plant creates each symlink name (in dir) -> target.
func plant(t *testing.T, dir string, links map[string]string) {
	t.Helper()
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// wantTree fails the test unless the tree under root is still before.
func wantTree(t *testing.T, root string, before map[string]string, when string) {
	t.Helper()
	after := tree(t, root)
	if !maps.Equal(before, after) {
		t.Errorf("%s changed %s:\n got %v\nwant %v", when, root, after, before)
	}
}
