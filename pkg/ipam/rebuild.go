package ipam

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// heldOrRebuild is held, rebuilding the index once if an entry turns out
// garbled; the caller holds the lock.
func (ix *index) heldOrRebuild(a Attachment) ([]record, error) {
	recs, err := ix.held(a)
	if !errors.Is(err, errIndexCorrupt) {
		return recs, err
	}
	if err := ix.rebuild(); err != nil {
		return nil, err
	}
	return ix.held(a)
}

// rebuild indexes every record found by one scan.
func (ix *index) rebuild() error {
	recs, _, err := ix.s.scan()
	if err != nil {
		return err
	}
	return ix.rebuildFrom(recs)
}

// rebuildFrom brings the index in line with recs, the records the directory
// holds, and seals it. It rewrites only the entries that differ, so after
// another process changed a few records it costs a read of each record and
// entry, and a write of the few that changed.
func (ix *index) rebuildFrom(recs []record) error {
	want := map[Attachment][]string{}
	for _, r := range recs {
		if k, ok := entryKey(r); ok {
			want[k] = append(want[k], r.name)
		}
	}
	names, err := ix.entryNames()
	if err != nil {
		return err
	}
	ix.found = map[Attachment]bool{}
	for _, name := range names {
		if err := ix.reconcile(name, want); err != nil {
			return err
		}
	}
	for k, recNames := range want {
		if err := ix.writeEntry(entry{owner: k, names: recNames}); err != nil {
			return err
		}
	}
	return ix.commit()
}

// entryNames lists the index directory, first making it a real directory
// if it is not one (a symlink is removed, never followed).
func (ix *index) entryNames() ([]string, error) {
	st, err := ix.s.root.lstat(indexDir)
	if err == nil && !isDir(st) {
		if err := ix.s.removeFile(indexDir); err != nil {
			return nil, err
		}
	}
	if err != nil || !isDir(st) {
		if err := ix.s.root.mkdir(indexDir, 0o700); err != nil {
			return nil, fmt.Errorf("create index directory in %s: %w", ix.s.dir, err)
		}
		return nil, nil
	}
	d, err := ix.s.root.openList(indexDir)
	if err != nil {
		return nil, fmt.Errorf("open index directory in %s: %w", ix.s.dir, err)
	}
	defer d.Close() // read-only directory handle: a close error loses nothing
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("list index directory in %s: %w", ix.s.dir, err)
	}
	return names, nil
}

// reconcile keeps the index file name if it is the entry want asks for,
// and removes it otherwise: a stale or garbled entry, a leftover temp
// file, anything else. A kept entry is taken out of want.
func (ix *index) reconcile(name string, want map[Attachment][]string) error {
	path := filepath.Join(indexDir, name)
	if strings.HasPrefix(name, entryPrefix) {
		// Anything unreadable or garbled is no entry to keep.
		if b, err := ix.s.readFile(path); err == nil {
			e, err := decodeEntry(string(b))
			if err == nil && name == entryName(e.owner) && sameNames(e.names, want[e.owner]) {
				ix.found[e.owner] = true
				delete(want, e.owner)
				return nil
			}
		}
	}
	if err := ix.s.root.removeAll(path); err != nil {
		return fmt.Errorf("remove %s in %s: %w", path, ix.s.dir, err)
	}
	return nil
}

func sameNames(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
