package ipam

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// storeCorpus holds seeds for the files of a network directory, named
// <kind>-<what>.txt; kind is record, last_reserved, note (another
// program's file, pkg/bridge's record of verified rules) or entry.
const storeCorpus = "../../testdata/corpus/store"

// FuzzEntry decodes arbitrary index entry files, and encodes entries of
// arbitrary owners. decodeEntry must never panic; what it accepts must
// name only plain addresses and survive an encode and decode unchanged. An
// encoded entry must decode to itself and never read like a host-local
// record (no '\r', which every record of a valid ifname holds), since
// the reference host-local reads every file under the network directory.
func FuzzEntry(f *testing.F) {
	for _, s := range storeSeeds(f)["entry"] {
		f.Add(string(s), "ctr", "eth0")
	}
	f.Add("", "ctr\r\neth0", "eth0")
	f.Add("", "  \"q\"\n", "eth0 ")
	f.Add("", "ctr", "")
	f.Fuzz(func(t *testing.T, content, id, ifName string) {
		if e, err := decodeEntry(content); err == nil {
			for _, n := range e.names {
				if _, err := netip.ParseAddr(n); err != nil || strings.ContainsAny(n, "/\x00") {
					t.Fatalf("decodeEntry(%q) accepted record name %q", content, n)
				}
			}
			if again, err := decodeEntry(e.encode()); err != nil || !reflect.DeepEqual(again, e) {
				t.Fatalf("decodeEntry(%q) = %+v; encoded and decoded again: %+v, %v", content, e, again, err)
			}
		}
		e := entry{owner: Attachment{ContainerID: id, IfName: ifName}, names: []string{"10.0.0.2", "fd00::2"}}
		enc := e.encode()
		if strings.Contains(enc, "\r") {
			t.Fatalf("entry of %q/%q holds a carriage return, as a record does:\n%q", id, ifName, enc)
		}
		if got, err := decodeEntry(enc); err != nil || !reflect.DeepEqual(got, e) {
			t.Fatalf("entry %+v encoded as %q decodes to %+v, %v", e, enc, got, err)
		}
		if _, err := netip.ParseAddr(entryName(e.owner)); err == nil {
			t.Fatalf("entry name %s parses as an address", entryName(e.owner))
		}
	})
}

// FuzzStoreFiles puts arbitrary content in the files another plugin, an
// operator or a crash may leave in a network directory, rewritten in place
// after a normal allocation: the record of 10.0.0.2, last_reserved_ip.0,
// a dotfile another program keeps there (pkg/bridge's record of verified
// rules), which the store must leave alone, and the index entry of its
// first owner. With the index
// seal kept, as when a file is rewritten in place, the store must stay
// safe: never hand out, report or free an address whose record does not
// read as the caller's. With the seal broken, as by any other change, it
// must also be exact.
func FuzzStoreFiles(f *testing.F) {
	seeds := storeSeeds(f)
	base := map[string][]byte{"record": []byte("ctr\r\neth0"), "last_reserved": []byte("10.0.0.2"),
		"note": nil, "entry": nil}
	for _, kind := range []string{"record", "last_reserved", "note", "entry"} {
		for _, s := range seeds[kind] {
			args := map[string][]byte{}
			for k, v := range base {
				args[k] = v
			}
			args[kind] = s
			for _, keep := range []bool{true, false} {
				f.Add(args["record"], args["last_reserved"], args["note"], args["entry"], keep)
			}
		}
	}
	f.Fuzz(func(t *testing.T, record, last, note, entryFile []byte, keepSeal bool) {
		s, p := newStore(t), poolOf(t, "10.0.0.0/29") // gateway .1; .2 to .6 to hand out
		writeFile(t, s, bridgeFile, "before")
		ours, other := att("ctr"), att("other")
		if got := mustAlloc(t, s, p, ours); !slices.Equal(got, addrs("10.0.0.2")) {
			t.Fatalf("first allocation %v, want 10.0.0.2", got)
		}
		rewrite(t, s, map[string][]byte{"10.0.0.2": record, lastReservedPrefix + "0": last,
			bridgeFile: note, filepath.Join(indexDir, entryName(ours)): entryFile})
		if !keepSeal {
			writeFile(t, s, "touched", "") // a new name in the directory breaks the seal
		}
		dot2 := addrs("10.0.0.2")
		st := storeCheck{t: t, s: s, exact: !keepSeal, record: record}
		st.lookup(ours, dot2)
		st.allocateOther(p, other)
		st.release(ours, dot2)
		if _, err := s.GC([]Attachment{other}); err != nil {
			t.Fatalf("GC: %v", err)
		}
		st.onlyOther(other)
		if got := readFile(t, s, bridgeFile); got != string(note) {
			t.Fatalf("%s now holds %q, was %q: the store must not touch a file not its own", bridgeFile, got, note)
		}
	})
}

// storeCheck holds what FuzzStoreFiles checks the store against.
type storeCheck struct {
	t      *testing.T
	s      *Store
	exact  bool   // the seal is broken: answers must be exact, not only safe
	record []byte // the content written to 10.0.0.2
}

// holds is the oracle: does the record read, as the reference reads it
// (trimmed, then "id\r\nifname" or a legacy "id"), as a's?
func (sc storeCheck) holds(a Attachment) bool {
	id, ifName, ok := strings.Cut(strings.TrimSpace(string(sc.record)), "\r\n")
	return id == a.ContainerID && (!ok || ifName == a.IfName)
}

// lookup checks Lookup(a), where held is what a holds if the record is a's.
func (sc storeCheck) lookup(a Attachment, held []netip.Addr) {
	sc.t.Helper()
	got, err := sc.s.Lookup(a)
	if err != nil {
		sc.t.Fatalf("Lookup(%v): %v", a, err)
	}
	want := held
	if !sc.holds(a) {
		want = nil
	}
	if !slices.Equal(got, want) && (sc.exact || len(got) > 0) {
		sc.t.Fatalf("Lookup(%v) = %v, want %v (record %q)", a, got, want, sc.record)
	}
}

// allocateOther gives a second attachment an address: never the gateway,
// never 10.0.0.2 unless its record reads as that attachment's.
func (sc storeCheck) allocateOther(p *Pool, a Attachment) {
	sc.t.Helper()
	got := mustAlloc(sc.t, sc.s, p, a)
	if len(got) != 1 {
		sc.t.Fatalf("Allocate(%v) = %v, want one address", a, got)
	}
	switch addr := got[0]; {
	case sc.holds(a) && sc.exact && addr != netip.MustParseAddr("10.0.0.2"):
		sc.t.Fatalf("Allocate(%v) = %s, but 10.0.0.2 already reads as its (record %q)", a, addr, sc.record)
	case addr == netip.MustParseAddr("10.0.0.2") && !sc.holds(a):
		sc.t.Fatalf("Allocate(%v) handed out 10.0.0.2, held by record %q", a, sc.record)
	case addr.Compare(netip.MustParseAddr("10.0.0.2")) < 0 || addr.Compare(netip.MustParseAddr("10.0.0.6")) > 0:
		sc.t.Fatalf("Allocate(%v) = %s: not a host of 10.0.0.0/29 other than the gateway", a, addr)
	}
}

// release checks Release(a): it frees held only if the record is a's, and
// leaves the record untouched otherwise.
func (sc storeCheck) release(a Attachment, held []netip.Addr) {
	sc.t.Helper()
	freed, err := sc.s.Release(a)
	if err != nil {
		sc.t.Fatalf("Release(%v): %v", a, err)
	}
	want := held
	if !sc.holds(a) {
		want = nil
	}
	if !slices.Equal(freed, want) && (sc.exact || len(freed) > 0) {
		sc.t.Fatalf("Release(%v) freed %v, want %v (record %q)", a, freed, want, sc.record)
	}
	if len(freed) == 0 {
		if b, err := os.ReadFile(filepath.Join(sc.s.Dir(), "10.0.0.2")); err != nil || string(b) != string(sc.record) {
			sc.t.Fatalf("record 10.0.0.2 not freed, yet now %q, %v; was %q", b, err, sc.record)
		}
	}
}

// onlyOther checks that after GC keeping a, every record left is a's or
// has no readable owner (GC keeps what it cannot attribute).
func (sc storeCheck) onlyOther(a Attachment) {
	sc.t.Helper()
	as, err := sc.s.Attachments()
	if err != nil {
		sc.t.Fatalf("Attachments: %v", err)
	}
	for _, got := range as {
		if got != a && !(got.ContainerID == a.ContainerID && got.IfName == "") {
			sc.t.Fatalf("after GC keeping %v, %v still holds an address (record %q)", a, got, sc.record)
		}
	}
}

// bridgeFile is the file pkg/bridge keeps beside the allocations.
const bridgeFile = ".nodebridge-note-rules"

// rewrite overwrites existing files of the store in place, as an editor
// or a torn write would: the directory itself does not change.
func rewrite(t *testing.T, s *Store, files map[string][]byte) {
	t.Helper()
	for name, content := range files {
		f, err := os.OpenFile(filepath.Join(s.Dir(), name), os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.Write(content)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// storeSeeds reads the store corpus, by kind.
func storeSeeds(f *testing.F) map[string][][]byte {
	f.Helper()
	paths, err := filepath.Glob(filepath.Join(storeCorpus, "*.txt"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no seeds in %s: %v", storeCorpus, err)
	}
	seeds := map[string][][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		kind, _, _ := strings.Cut(filepath.Base(p), "-")
		seeds[kind] = append(seeds[kind], b)
	}
	return seeds
}
