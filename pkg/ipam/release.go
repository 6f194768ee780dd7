package ipam

import (
	"cmp"
	"errors"
	"net/netip"
	"slices"
	"strings"
)

// Release frees every address held by a (the caller holds the lock), legacy
// ID-only records of its container included; none held is not an error.
// It keeps going past a record it cannot remove, and returns the addresses
// it freed.
func (s *Store) Release(a Attachment) ([]netip.Addr, error) {
	recs, _, err := s.scan()
	if err != nil {
		return nil, err
	}
	var freed []netip.Addr
	var errs []error
	for _, r := range recs {
		if !r.matches(a) {
			continue
		}
		if err := s.removeFile(r.name); err != nil {
			errs = append(errs, err)
			continue
		}
		freed = append(freed, r.addr)
	}
	return freed, errors.Join(errs...)
}

// Lookup returns the addresses held by a, in address order.
func (s *Store) Lookup(a Attachment) ([]netip.Addr, error) {
	recs, _, err := s.scan()
	if err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	for _, r := range recs {
		if r.matches(a) {
			addrs = append(addrs, r.addr)
		}
	}
	return addrs, nil
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
// writer left; last_reserved_ip.* and the lock are never touched.
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
	for _, r := range recs {
		if r.owner.ContainerID == "" || (r.legacy && ids[r.owner.ContainerID]) || (!r.legacy && keep[r.owner]) {
			continue
		}
		if err := s.removeFile(r.name); err != nil {
			errs = append(errs, err)
			continue
		}
		gone = append(gone, r.owner)
	}
	for _, t := range temps {
		errs = append(errs, s.removeFile(t))
	}
	return sortAttachments(gone), errors.Join(errs...)
}

// sortAttachments sorts as and drops duplicates.
func sortAttachments(as []Attachment) []Attachment {
	slices.SortFunc(as, func(a, b Attachment) int {
		return cmp.Or(strings.Compare(a.ContainerID, b.ContainerID), strings.Compare(a.IfName, b.IfName))
	})
	return slices.Compact(as)
}
