package ipam

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
)

// Release frees every address held by a (the caller holds the lock), legacy
// ID-only records of its container included; none held is not an error.
// It keeps going past a record it cannot remove, and returns the addresses
// it freed. It reads a's index entries and records only, so its cost does
// not grow with the number of allocations; for an attachment holding
// nothing it writes nothing.
func (s *Store) Release(a Attachment) ([]netip.Addr, error) {
	ix, err := s.openIndex()
	if err != nil {
		return nil, err
	}
	recs, err := ix.heldOrRebuild(a)
	if err != nil || len(recs) == 0 {
		return nil, err
	}
	var freed []netip.Addr
	var errs []error
	var left []record
	for _, r := range recs {
		if err := s.removeFile(r.name); err != nil {
			errs = append(errs, err)
			left = append(left, r)
			continue
		}
		freed = append(freed, r.addr)
	}
	if err := ix.forget(recs, left); err != nil {
		return freed, errors.Join(append(errs, err)...) // unsealed: the next locked call rebuilds
	}
	return freed, errors.Join(append(errs, ix.commit())...)
}

// forget rewrites the entries of the records in recs, which a call tried
// to remove, so that they list only those left.
func (ix *index) forget(recs, left []record) error {
	names := map[Attachment][]string{}
	for _, r := range recs {
		k, _ := entryKey(r) // held returns only records with an owner
		names[k] = nil
	}
	for _, r := range left {
		k, _ := entryKey(r)
		names[k] = append(names[k], r.name)
	}
	var errs []error
	for k, n := range names {
		errs = append(errs, ix.writeEntry(entry{owner: k, names: n}))
	}
	return errors.Join(errs...)
}

// Lookup returns the addresses held by a, in address order. It writes
// nothing, so CHECK may call it without the lock; when the index cannot be
// trusted it scans instead.
func (s *Store) Lookup(a Attachment) ([]netip.Addr, error) {
	ix, err := s.loadIndex()
	if err != nil {
		return nil, err
	}
	if ix.fresh {
		recs, err := ix.held(a)
		if !errors.Is(err, errIndexCorrupt) {
			return recordAddrs(recs), err
		}
	}
	recs, _, err := s.scan()
	if err != nil {
		return nil, err
	}
	return recordAddrs(slices.DeleteFunc(recs, func(r record) bool { return !r.matches(a) })), nil
}

func recordAddrs(recs []record) []netip.Addr {
	var addrs []netip.Addr
	for _, r := range recs {
		addrs = append(addrs, r.addr)
	}
	return addrs
}

// Empty reports whether no attachment holds an address, as
// len(Attachments()) == 0 would. With a fresh index it reads the index
// directory only up to its first entry, so its cost does not grow with the
// number of allocations; DEL can ask it whether the network's rules may go.
func (s *Store) Empty() (bool, error) {
	ix, err := s.loadIndex()
	if err != nil {
		return false, err
	}
	if !ix.fresh {
		as, err := s.Attachments()
		return len(as) == 0, err
	}
	d, err := s.root.openList(indexDir)
	if err != nil {
		return false, fmt.Errorf("open index directory in %s: %w", s.dir, err)
	}
	defer d.Close() // read-only directory handle: a close error loses nothing
	for {
		names, err := d.Readdirnames(64)
		if slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, entryPrefix) }) {
			return false, nil
		}
		if errors.Is(err, io.EOF) {
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("list index directory in %s: %w", s.dir, err)
		}
	}
}

// Attachments lists every attachment holding an address, sorted; a legacy
// ID-only record gives one with an empty IfName.
func (s *Store) Attachments() ([]Attachment, error) {
	recs, _, err := s.scan()
	if err != nil {
		return nil, err
	}
	var out []Attachment
	for _, r := range recs {
		if r.owner.ContainerID != "" {
			out = append(out, r.owner)
		}
	}
	return sortAttachments(out), nil
}

// GC releases every attachment not in valid and returns those it released
// (the caller holds the lock). A legacy ID-only record is kept when any valid
// attachment has its container ID. It also removes temp files a crashed
// writer left, and rebuilds the index from what is left, which drops any
// stale entry; last_reserved_ip.* and the lock are never touched. Unlike
// ADD and DEL it scans the whole directory.
func (s *Store) GC(valid []Attachment) ([]Attachment, error) {
	recs, temps, err := s.scan()
	if err != nil {
		return nil, err
	}
	keep := make(map[Attachment]bool, len(valid))
	ids := make(map[string]bool, len(valid))
	for _, a := range valid {
		id := strings.TrimSpace(a.ContainerID)
		keep[Attachment{ContainerID: id, IfName: a.IfName}] = true
		ids[id] = true
	}
	var gone []Attachment
	var errs []error
	left := recs[:0:0]
	for _, r := range recs {
		if r.owner.ContainerID == "" || (r.legacy && ids[r.owner.ContainerID]) || (!r.legacy && keep[r.owner]) {
			left = append(left, r)
			continue
		}
		if err := s.removeFile(r.name); err != nil {
			errs = append(errs, err)
			left = append(left, r)
			continue
		}
		gone = append(gone, r.owner)
	}
	for _, t := range temps {
		errs = append(errs, s.removeFile(t))
	}
	ix := &index{s: s}
	errs = append(errs, ix.rebuildFrom(left))
	return sortAttachments(gone), errors.Join(errs...)
}

// sortAttachments sorts as and drops duplicates.
func sortAttachments(as []Attachment) []Attachment {
	slices.SortFunc(as, func(a, b Attachment) int {
		return cmp.Or(strings.Compare(a.ContainerID, b.ContainerID), strings.Compare(a.IfName, b.IfName))
	})
	return slices.Compact(as)
}
