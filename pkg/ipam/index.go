package ipam

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The attachment index lives in a subdirectory of the network directory:
// one entry file per attachment, listing the record files it holds. The
// seal (seal.go) says whether the entries can be trusted; when they cannot,
// one scan rebuilds them (rebuild.go).
//
// Reference host-local v1.9.1 walks the whole tree under the network
// directory on every DEL, CHECK and ADD, reads every file and removes or
// reports those whose trimmed content is "id\r\nifname" or "id" (and, to
// report one, parses its name as an address). So no index file may ever
// read like a record: each starts with indexHeader and quotes the strings
// it holds, so it contains no '\r' (a record of a valid CNI_IFNAME always
// does) and is longer than any ID it names; and no index name parses as an
// address. The reference has no GC, so nothing else of it touches the index.
const (
	indexDir    = ".nodebridge-index"
	entryPrefix = "a-"
	indexHeader = "nodebridge ipam index v1"
)

// errIndexCorrupt marks an index file that does not parse or names another
// attachment; the index is then rebuilt, or bypassed by a read-only call.
var errIndexCorrupt = errors.New("index corrupt")

// entry is the index file of one attachment: the names of the record files
// it holds. Legacy ID-only records are indexed under the ID with an empty
// IfName, which no current record has.
type entry struct {
	owner Attachment
	names []string
}

// entryKey is the index owner of r, and false when r has no readable owner.
func entryKey(r record) (Attachment, bool) {
	if r.owner.ContainerID == "" {
		return Attachment{}, false
	}
	if r.legacy {
		return Attachment{ContainerID: r.owner.ContainerID}, true
	}
	return r.owner, true
}

// entryName is the index file of a. A hash keeps any ID, however long or
// odd, one short path element that never parses as an address.
func entryName(a Attachment) string {
	sum := sha256.Sum256([]byte(a.ContainerID + "\x00" + a.IfName))
	return entryPrefix + hex.EncodeToString(sum[:])
}

// encode writes e as lines, each ending in a newline so that a torn entry
// never parses; strings are quoted so that none holds a raw line break.
func (e entry) encode() string {
	var b strings.Builder
	b.WriteString(indexHeader + "\n")
	b.WriteString("id " + strconv.Quote(e.owner.ContainerID) + "\n")
	b.WriteString("ifname " + strconv.Quote(e.owner.IfName) + "\n")
	for _, n := range e.names {
		b.WriteString("record " + n + "\n")
	}
	return b.String()
}

// decodeEntry parses an entry, or returns errIndexCorrupt.
func decodeEntry(content string) (entry, error) {
	var e entry
	lines := strings.Split(content, "\n")
	if lines[len(lines)-1] != "" { // torn: every line ends in a newline
		return e, errIndexCorrupt
	}
	lines = lines[:len(lines)-1]
	if len(lines) < 4 || lines[0] != indexHeader { // an entry always names a record
		return e, errIndexCorrupt
	}
	id, err1 := unquoteField(lines[1], "id ")
	ifname, err2 := unquoteField(lines[2], "ifname ")
	if err := errors.Join(err1, err2); err != nil {
		return e, err
	}
	e.owner = Attachment{ContainerID: id, IfName: ifname}
	for _, l := range lines[3:] {
		n, ok := strings.CutPrefix(l, "record ")
		if _, err := netip.ParseAddr(n); !ok || err != nil || strings.Contains(n, "/") {
			return e, errIndexCorrupt
		}
		e.names = append(e.names, n)
	}
	return e, nil
}

func unquoteField(line, prefix string) (string, error) {
	q, ok := strings.CutPrefix(line, prefix)
	if !ok {
		return "", errIndexCorrupt
	}
	s, err := strconv.Unquote(q)
	if err != nil {
		return "", errIndexCorrupt
	}
	return s, nil
}

// readEntry returns the entry of a, or one with no names when there is none.
func (ix *index) readEntry(a Attachment) (entry, error) {
	name := filepath.Join(indexDir, entryName(a))
	b, err := ix.s.readFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return entry{owner: a}, nil
	}
	if err != nil {
		// Entries are derived from the records: one that cannot be read
		// (a symlink, a directory, a socket planted there) is corrupt, as
		// reconcile counts it, and the rebuild removes it.
		err = fmt.Errorf("%w: %w", errIndexCorrupt, err)
		return entry{}, fmt.Errorf("read index entry %s in %s: %w", name, ix.s.dir, err)
	}
	ix.found[a] = true
	e, err := decodeEntry(string(b))
	if err == nil && e.owner != a {
		err = errIndexCorrupt // a hash collision, or a file copied by hand
	}
	if err != nil {
		return entry{}, fmt.Errorf("index entry %s in %s: %w", name, ix.s.dir, err)
	}
	return e, nil
}

// writeEntry replaces the entry of e.owner, or removes it when e holds no
// names. A new entry is created in place, create-exclusive, and an existing
// one replaced by rename; either changes the index directory and so breaks
// the seal until commit, which is what makes a torn new entry harmless.
// Whether the entry exists is known from reading it, or from a rebuild.
func (ix *index) writeEntry(e entry) error {
	name := entryName(e.owner)
	path := filepath.Join(indexDir, name)
	existed := ix.found[e.owner]
	ix.found[e.owner] = len(e.names) > 0
	switch {
	case len(e.names) == 0 && existed:
		return ix.s.removeFile(path)
	case len(e.names) == 0:
		return nil
	case !existed:
		ok, err := ix.s.createFile(path, e.encode())
		if ok || err != nil {
			return err
		}
	}
	return ix.s.replaceFile(indexDir, name, e.encode())
}

// held returns the records a holds, read back one by one: the index only
// says where to look, so an entry gone stale (its record freed or reused
// behind our back) is never trusted. Legacy ID-only records of a's
// container count, as in a scan; record.legacy tells them apart.
func (ix *index) held(a Attachment) ([]record, error) {
	id := strings.TrimSpace(a.ContainerID)
	if id == "" {
		return nil, nil
	}
	keys := []Attachment{{ContainerID: id}}
	if a.IfName != "" {
		keys = append(keys, Attachment{ContainerID: id, IfName: a.IfName})
	}
	var recs []record
	for _, key := range keys {
		e, err := ix.readEntry(key)
		if err != nil {
			return nil, err
		}
		for _, n := range e.names {
			r, err := ix.s.readRecord(n)
			if err != nil {
				return nil, err
			}
			if k, ok := entryKey(r); ok && k == key {
				recs = append(recs, r)
			}
		}
	}
	slices.SortFunc(recs, func(x, y record) int { return x.addr.Compare(y.addr) })
	return recs, nil
}
