package main_test

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

// TestGCFreesReferenceAllocations: GC frees exactly the allocations whose
// attachment is not in cni.dev/valid-attachments, whoever wrote them (the
// reference host-local, an old one's ID-only record, or nodebridge), in
// every range set, and leaves last_reserved_ip.* and the lock file alone.
func TestGCFreesReferenceAllocations(t *testing.T) {
	t.Parallel()
	f := newFixture(t, podSubnet)
	conf := dualStackConf(f)
	r0, r1, r2, r3, n0, n1 := f.newPod(), f.newPod(), f.newPod(), f.newPod(), f.newPod(), f.newPod()
	f.refAdd(r0, conf, "")
	f.refAdd(r1, conf, "")
	resN0 := mustResult(t, f.run(f.callFor("ADD", n0, conf)), "1.1.0")
	resN1 := mustResult(t, f.run(f.callFor("ADD", n1, conf)), "1.1.0")
	f.refAdd(r2, conf, "") // after nodebridge last looked: GC must still see it
	// What an old host-local wrote: the container ID alone. GC keeps such a
	// record while any valid attachment has its ID, as the reference's DEL
	// would free it for any ifname of that container.
	f.writeRecord("10.244.0.200", r0.id)
	f.writeRecord("10.244.0.201", "ctr-gone-legacy")
	before := f.records()
	if len(before) != 12 {
		t.Fatalf("want 2 records for each of 5 attachments and 2 legacy ones, have %s", showRecords(before))
	}

	book := f.bookkeeping()
	f.gc(conf, r0, n0)
	want := maps.Clone(before)
	maps.DeleteFunc(want, func(_, owner string) bool {
		return owner != r0.owner() && owner != n0.owner() && owner != r0.id
	})
	if len(want) != 5 {
		t.Fatalf("test bug: %d records to keep, want 5: %s", len(want), showRecords(want))
	}
	f.wantRecords("after GC keeping "+r0.id+" and "+n0.id, want)
	f.wantBookkeeping("GC keeping two", book)
	veths := vethNames(t, f.node)
	if !slices.Contains(veths, resN0.Interfaces[1].Name) || slices.Contains(veths, resN1.Interfaces[1].Name) {
		t.Errorf("veths after GC: %v, want %s kept and %s removed", veths, resN0.Interfaces[1].Name, resN1.Interfaces[1].Name)
	}

	// The reference reads the store GC left: no collision with what stayed.
	if got := f.refAdd(r3, conf, ""); want[got] != "" {
		t.Errorf("reference ADD after GC got %s, held by %q", got, want[got])
	}
	book = f.bookkeeping()
	f.gc(conf)
	f.wantBookkeeping("GC keeping none", book)
	f.assertNoAttachments()
}

// dualStackConf is f's config with an IPv4 and an IPv6 range set, so every
// attachment holds two records and the store two last_reserved_ip files.
func dualStackConf(f *fixture) map[string]any {
	conf := f.conf("1.1.0")
	ipam := conf["ipam"].(map[string]any)
	delete(ipam, "subnet")
	ipam["ranges"] = []any{
		[]any{map[string]any{"subnet": podSubnet}},
		[]any{map[string]any{"subnet": "fd00:10:244::/64"}},
	}
	return conf
}

// gc runs a nodebridge GC whose valid attachments are keep.
func (f *fixture) gc(conf map[string]any, keep ...pod) {
	f.t.Helper()
	valid := []types.GCAttachment{}
	for _, p := range keep {
		valid = append(valid, types.GCAttachment{ContainerID: p.id, IfName: p.ifName})
	}
	gc := maps.Clone(conf)
	gc["cni.dev/valid-attachments"] = valid
	mustSucceed(f.t, f.run(call{Command: "GC", Conf: mustJSON(f.t, gc)}), "GC")
}

// writeRecord plants an allocation file as another host-local would write it.
func (f *fixture) writeRecord(addr, content string) {
	f.t.Helper()
	if err := os.WriteFile(filepath.Join(f.netDir(), addr), []byte(content), 0o600); err != nil {
		f.t.Fatal(err)
	}
}

// bookkeeping is the lock file and the last_reserved_ip.* files of a store.
type bookkeeping struct {
	lock     os.FileInfo
	reserved map[string]string // name -> content
}

func (f *fixture) bookkeeping() bookkeeping {
	f.t.Helper()
	lock, err := os.Stat(filepath.Join(f.netDir(), "lock"))
	if err != nil {
		f.t.Fatalf("stat lock file: %v", err)
	}
	b := bookkeeping{lock: lock, reserved: map[string]string{}}
	names, err := filepath.Glob(filepath.Join(f.netDir(), "last_reserved_ip.*"))
	if err != nil {
		f.t.Fatal(err)
	}
	for _, n := range names {
		content, err := os.ReadFile(n)
		if err != nil {
			f.t.Fatalf("read %s: %v", n, err)
		}
		b.reserved[filepath.Base(n)] = string(content)
	}
	return b
}

// wantBookkeeping fails the test unless the lock is the same file and every
// last_reserved_ip file, at least one per range set, is as it was.
func (f *fixture) wantBookkeeping(when string, before bookkeeping) {
	f.t.Helper()
	after := f.bookkeeping()
	if !os.SameFile(before.lock, after.lock) {
		f.t.Errorf("%s replaced the lock file", when)
	}
	if len(before.reserved) != 2 || !maps.Equal(before.reserved, after.reserved) {
		f.t.Errorf("last_reserved_ip files %s: %v, before: %v (want one per range set, unchanged)",
			when, after.reserved, before.reserved)
	}
	for name, addr := range after.reserved {
		if strings.TrimSpace(addr) == "" {
			f.t.Errorf("%s %s: empty", when, name)
		}
	}
}
