package ipam

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// checkIndex insists the index is fresh and holds exactly one 0600 entry
// per owner of the records a scan finds, listing that owner's records, in
// a 0700 directory, and nothing else.
func checkIndex(t testing.TB, s *Store) {
	t.Helper()
	if ix, err := s.loadIndex(); err != nil || !ix.fresh {
		t.Fatalf("index not fresh (%v)", err)
	}
	if fi, err := os.Lstat(filepath.Join(s.Dir(), indexDir)); err != nil || fi.Mode() != os.ModeDir|0o700 {
		t.Errorf("index directory: %v, %v; want a 0700 directory", fi.Mode(), err)
	}
	recs, _, err := s.scan()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]entry{}
	for _, r := range recs {
		if k, ok := entryKey(r); ok {
			e := want[entryName(k)]
			want[entryName(k)] = entry{owner: k, names: append(e.names, r.name)}
		}
	}
	names := indexNames(t, s)
	for _, n := range names {
		path := filepath.Join(s.Dir(), indexDir, n)
		b, err := os.ReadFile(path)
		e, derr := decodeEntry(string(b))
		w, ok := want[n]
		if err != nil || derr != nil || !ok || e.owner != w.owner || !sameNames(e.names, w.names) {
			t.Errorf("index file %s = %+v (%v, %v); want %+v", n, e, err, derr, w)
		}
		if fi, err := os.Lstat(path); err != nil || fi.Mode() != 0o600 {
			t.Errorf("index file %s: %v, %v; want a 0600 regular file", n, fi.Mode(), err)
		}
	}
	for n, w := range want {
		if !slices.Contains(names, n) {
			t.Errorf("no index entry for %+v", w)
		}
	}
}

// locked runs what a plugin process does first, a locked call, so that a
// stale index gets rebuilt.
func locked(t testing.TB, s *Store) {
	t.Helper()
	mustRelease(t, s, att("nobody"))
}

func TestIndexFollowsOps(t *testing.T) {
	p, s := poolOf(t, "10.0.0.0/24", "fd00::/64"), newStore(t)
	steps := []struct {
		name  string
		do    func(t *testing.T)
		empty bool
	}{
		{"fresh store", func(t *testing.T) { locked(t, s) }, true},
		{"allocate", func(t *testing.T) {
			for _, id := range []string{"a", "b", "c"} {
				mustAlloc(t, s, p, att(id))
			}
		}, false},
		{"allocate again", func(t *testing.T) { mustAlloc(t, s, p, att("b")) }, false},
		{"second ifname", func(t *testing.T) { mustAlloc(t, s, p, Attachment{"b", "net1"}) }, false},
		{"release", func(t *testing.T) { mustRelease(t, s, att("a")) }, false},
		{"requested", func(t *testing.T) { mustAlloc(t, s, p, att("d"), addrs("10.0.0.99")...) }, false},
		{"failed allocate", func(t *testing.T) {
			if _, err := s.Allocate(p, att("e"), addrs("10.0.0.99")); err == nil {
				t.Fatal("Allocate of a taken requested address succeeded")
			}
		}, false},
		{"gc", func(t *testing.T) {
			if _, err := s.GC([]Attachment{att("c")}); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"release last", func(t *testing.T) { mustRelease(t, s, att("c")) }, true},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.do(t)
			checkIndex(t, s)
			if empty, err := s.Empty(); err != nil || empty != st.empty {
				t.Errorf("Empty = %v, %v; want %v", empty, err, st.empty)
			}
		})
	}
}

// TestIndexSeesChangesBehindItsBack changes records as reference
// host-local or an operator would, after nodebridge allocated p1 (10.0.0.2)
// and p2 (10.0.0.3), and checks every call sees the change.
func TestIndexSeesChangesBehindItsBack(t *testing.T) {
	type want struct {
		a    Attachment
		held []string
	}
	tests := []struct {
		name    string
		change  func(t *testing.T, s *Store)
		lookups []want // Lookup, then Release, in order
	}{
		{"record added", func(t *testing.T, s *Store) { writeFile(t, s, "10.0.0.9", "x\r\neth0") },
			[]want{{att("x"), []string{"10.0.0.9"}}, {att("p1"), []string{"10.0.0.2"}}}},
		{"legacy record added", func(t *testing.T, s *Store) { writeFile(t, s, "10.0.0.9", "old") },
			[]want{{Attachment{"old", "net1"}, []string{"10.0.0.9"}}, {att("old"), nil}}},
		{"record removed", func(t *testing.T, s *Store) { removeTestFile(t, s, "10.0.0.2") },
			[]want{{att("p1"), nil}, {att("p2"), []string{"10.0.0.3"}}}},
		{"record reassigned", func(t *testing.T, s *Store) {
			removeTestFile(t, s, "10.0.0.2")
			writeFile(t, s, "10.0.0.2", "y\r\neth0")
		}, []want{{att("p1"), nil}, {att("y"), []string{"10.0.0.2"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, s := poolOf(t, "10.0.0.0/24"), newStore(t)
			mustAlloc(t, s, p, att("p1"))
			mustAlloc(t, s, p, att("p2"))
			tt.change(t, s)
			if ix, err := s.loadIndex(); err != nil || ix.fresh {
				t.Fatalf("index still fresh after the change (%v)", err)
			}
			for _, w := range tt.lookups {
				if got := mustLookup(t, s, w.a); !slices.Equal(got, addrs(w.held...)) {
					t.Errorf("Lookup(%v) = %v, want %v", w.a, got, w.held)
				}
				if got := mustRelease(t, s, w.a); !slices.Equal(got, addrs(w.held...)) {
					t.Errorf("Release(%v) = %v, want %v", w.a, got, w.held)
				}
			}
			got := mustAlloc(t, s, p, att("new"))
			if held := mustLookup(t, s, att("new")); !slices.Equal(held, got) || readFile(t, s, got[0].String()) != "new\r\neth0" {
				t.Errorf("Allocate after the change = %v, Lookup %v", got, held)
			}
			checkIndex(t, s)
		})
	}
}

// TestSealSameClockTick checks that a record another process creates
// right after a call of ours is seen even when the kernel gives it the very
// time it gave our last change, as a coarse clock does within one tick.
func TestSealSameClockTick(t *testing.T) {
	for _, after := range []time.Duration{0, time.Nanosecond, time.Millisecond} {
		t.Run(after.String(), func(t *testing.T) {
			p, s := poolOf(t, "10.0.0.0/24"), newStore(t)
			mustAlloc(t, s, p, att("p1"))
			ix, err := s.openIndex()
			if err != nil {
				t.Fatal(err)
			}
			// A change of ours, as a call makes one, and the time the
			// kernel gave it; then the call's commit.
			writeFile(t, s, tmpPrefix+"ours", "")
			removeTestFile(t, s, tmpPrefix+"ours")
			ours := mtimeOf(t, s.Dir())
			if err := ix.commit(); err != nil {
				t.Fatal(err)
			}
			writeFile(t, s, "10.0.0.9", "x\r\neth0")
			setMtime(t, s.Dir(), ours.Add(after))
			if ix, err := s.loadIndex(); err != nil || ix.fresh {
				t.Fatalf("index still fresh after a foreign record at our time + %v (%v)", after, err)
			}
			if got := mustRelease(t, s, att("x")); !slices.Equal(got, addrs("10.0.0.9")) {
				t.Errorf("Release of the foreign record's owner = %v", got)
			}
			checkIndex(t, s)
		})
	}
}

func TestIndexRewrittenInPlace(t *testing.T) {
	// A record whose content changes in place goes unseen by the seal; the
	// read-back keeps the old owner from freeing it, and GC puts it right.
	p, s := poolOf(t, "10.0.0.0/24"), newStore(t)
	mustAlloc(t, s, p, att("p1"))
	writeFile(t, s, "10.0.0.2", "z\r\neth0")
	if got := mustRelease(t, s, att("p1")); got != nil {
		t.Errorf("Release of the old owner freed %v", got)
	}
	if got := readFile(t, s, "10.0.0.2"); got != "z\r\neth0" {
		t.Errorf("record now holds %q", got)
	}
	if _, err := s.GC([]Attachment{att("z")}); err != nil {
		t.Fatal(err)
	}
	checkIndex(t, s)
	if got := mustLookup(t, s, att("z")); !slices.Equal(got, addrs("10.0.0.2")) {
		t.Errorf("Lookup of the new owner after GC = %v", got)
	}
}

func TestEntryNeverReadsLikeRecord(t *testing.T) {
	// Reference host-local removes, on DEL, every file under the network
	// directory whose trimmed content is "id\r\nifname" or "id", and parses
	// the name of one it reports.
	ids := []string{"abc", " padded ", "x\r\ny", "record 10.0.0.2", strings.Repeat("f", 70_000), "ünï\x00"}
	for _, id := range ids {
		for _, ifname := range []string{"", "eth0", "y\r\neth0"} {
			e := entry{owner: Attachment{id, ifname}, names: []string{"10.0.0.2", "fd00::2"}}
			content, name := e.encode(), entryName(e.owner)
			trimmed := strings.TrimSpace(content)
			if strings.ContainsRune(content, '\r') || trimmed == strings.TrimSpace(id) || trimmed == strings.TrimSpace(id)+"\r\n"+ifname {
				t.Errorf("entry of %q/%q reads like a record: %q", id, ifname, content)
			}
			if _, err := netip.ParseAddr(name); err == nil || net.ParseIP(name) != nil || len(name) > 255 {
				t.Errorf("entry name %q parses as an address or is too long", name)
			}
			if got, err := decodeEntry(content); err != nil || got.owner != e.owner || !slices.Equal(got.names, e.names) {
				t.Errorf("decode(encode(%q/%q)) = %+v, %v", id[:min(len(id), 10)], ifname, got, err)
			}
			if _, err := decodeEntry(content[:len(content)-1]); err == nil {
				t.Errorf("torn entry of %q/%q decodes", id[:min(len(id), 10)], ifname)
			}
		}
	}
}

func TestEmpty(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  bool
	}{
		{"nothing", nil, true},
		{"bookkeeping only", map[string]string{"last_reserved_ip.0": "10.0.0.5", ".tmp-x": "a\r\neth0"}, true},
		{"reference record", map[string]string{"10.0.0.5": "a\r\neth0"}, false},
		{"legacy record", map[string]string{"10.0.0.5": "a"}, false},
		{"ownerless record", map[string]string{"10.0.0.5": ""}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			locked(t, s)
			for name, content := range tt.files {
				writeFile(t, s, name, content)
			}
			for _, when := range []string{"stale index", "fresh index"} {
				if got, err := s.Empty(); err != nil || got != tt.want {
					t.Errorf("Empty with a %s = %v, %v; want %v", when, got, err, tt.want)
				}
				locked(t, s)
			}
		})
	}
}

func removeTestFile(t testing.TB, s *Store, name string) {
	t.Helper()
	if err := os.Remove(filepath.Join(s.Dir(), name)); err != nil {
		t.Fatal(err)
	}
}

func mtimeOf(t testing.TB, path string) time.Time {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.ModTime()
}

func setMtime(t testing.TB, path string, mtime time.Time) {
	t.Helper()
	if err := os.Chtimes(path, time.Time{}, mtime); err != nil {
		t.Fatal(err)
	}
}
