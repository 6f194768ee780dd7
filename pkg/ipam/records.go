package ipam

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Names in the network directory, as the reference host-local uses them;
// tmpPrefix is ours and never parses as an address.
const (
	lockName           = "lock"
	lastReservedPrefix = "last_reserved_ip."
	tmpPrefix          = ".tmp-"
	lineBreak          = "\r\n"
)

// record is one allocation file: <dir>/<addr> holding "id\r\nifname", or
// just "id" when an old host-local wrote it (legacy).
type record struct {
	name   string // file name, for removal
	addr   netip.Addr
	owner  Attachment // zero when the entry is not a readable regular file
	legacy bool
}

// matches reports whether r belongs to a: same ID and ifname, or a legacy
// ID-only record with the same ID.
func (r record) matches(a Attachment) bool {
	id := strings.TrimSpace(a.ContainerID)
	if id == "" || r.owner.ContainerID != id {
		return false
	}
	return r.legacy || r.owner.IfName == a.IfName
}

// scan lists every allocation in the directory, sorted by address, and the
// temp files present. It is the store's only read of allocation state: one
// directory listing and one read per record, whatever the operation.
func (s *Store) scan() (recs []record, temps []string, err error) {
	d, err := s.root.Open(".")
	if err != nil {
		return nil, nil, fmt.Errorf("open network directory %s: %w", s.dir, err)
	}
	entries, err := d.ReadDir(-1)
	d.Close() // read-only directory handle: a close error loses nothing
	if err != nil {
		return nil, nil, fmt.Errorf("list network directory %s: %w", s.dir, err)
	}
	for _, e := range entries {
		addr, err := netip.ParseAddr(e.Name())
		if err != nil {
			if strings.HasPrefix(e.Name(), tmpPrefix) {
				temps = append(temps, e.Name())
			}
			continue // lock, last_reserved_ip.N, anything else
		}
		r := record{name: e.Name(), addr: addr.Unmap()}
		if e.Type().IsRegular() { // never follow a symlink to read an owner
			if r, err = s.readOwner(r); err != nil {
				return nil, nil, err
			}
		}
		recs = append(recs, r)
	}
	slices.SortFunc(recs, func(a, b record) int { return a.addr.Compare(b.addr) })
	return recs, temps, nil
}

// readOwner fills in who holds r. The content is trimmed as the reference
// trims it before comparing.
func (s *Store) readOwner(r record) (record, error) {
	b, err := s.root.ReadFile(r.name)
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil // removed since the listing: still counts as taken this once
	}
	if err != nil {
		return r, fmt.Errorf("read allocation %s in %s: %w", r.name, s.dir, err)
	}
	id, ifname, ok := strings.Cut(strings.TrimSpace(string(b)), lineBreak)
	r.owner = Attachment{ContainerID: id, IfName: ifname}
	r.legacy = !ok
	return r, nil
}

// writeRecord records addr as held by a. It reports false when addr is
// already taken. The content is written to a temp file first and hard-linked
// into place, so a reader never sees a partial record and an existing one is
// never replaced.
func (s *Store) writeRecord(addr netip.Addr, a Attachment) (bool, error) {
	tmp, err := s.writeTemp(strings.TrimSpace(a.ContainerID) + lineBreak + a.IfName)
	if err != nil {
		return false, err
	}
	// The temp name is gone either way once linked; a leftover is swept by GC.
	defer s.root.Remove(tmp)
	err = s.root.Link(tmp, addr.String())
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("record allocation %s in %s: %w", addr, s.dir, err)
	}
	return true, nil
}

// removeFile deletes one file of the store; a missing one is not an error.
func (s *Store) removeFile(name string) error {
	if err := s.root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s in %s: %w", name, s.dir, err)
	}
	return nil
}

// lastReserved returns the address last handed out from range set i, or the
// zero Addr. Round-robin is best effort, as in the reference: an unreadable
// or garbled file just restarts the walk at the set's first address.
func (s *Store) lastReserved(i int) netip.Addr {
	b, err := s.root.ReadFile(lastReservedPrefix + strconv.Itoa(i))
	if err != nil {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(strings.TrimSpace(string(b)))
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// setLastReserved records addr as the last address handed out from range
// set i, replacing the file atomically.
func (s *Store) setLastReserved(i int, addr netip.Addr) error {
	name := lastReservedPrefix + strconv.Itoa(i)
	tmp, err := s.writeTemp(addr.String())
	if err != nil {
		return err
	}
	if err := s.root.Rename(tmp, name); err != nil {
		return errors.Join(fmt.Errorf("replace %s in %s: %w", name, s.dir, err), s.removeFile(tmp))
	}
	return nil
}

// writeTemp writes content to a new 0600 file with a random temp name and
// returns the name.
func (s *Store) writeTemp(content string) (string, error) {
	name := tmpPrefix + rand.Text()
	f, err := s.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("create temp file in %s: %w", s.dir, err)
	}
	_, err = f.WriteString(content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", errors.Join(fmt.Errorf("write %s in %s: %w", name, s.dir, err), s.removeFile(name))
	}
	return name, nil
}
