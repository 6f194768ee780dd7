package ipam

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
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
// temp files present: one directory listing and one read per record. Only
// GC, Attachments, Full, an index rebuild and a read-only call finding the
// index stale pay for it; ADD and DEL go through the index.
func (s *Store) scan() (recs []record, temps []string, err error) {
	d, err := s.root.openList(".")
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
	b, err := s.readFile(r.name)
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

// readRecord reads the record of the file name, as an index hit is
// verified. A missing file, or one that is not a regular file, comes back
// with a zero owner: a symlink is never followed to learn who holds name.
func (s *Store) readRecord(name string) (record, error) {
	addr, err := netip.ParseAddr(name)
	if err != nil {
		return record{}, fmt.Errorf("record name %q in %s: not an address: %w", name, s.dir, err)
	}
	r := record{name: name, addr: addr.Unmap()}
	st, err := s.root.lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("stat allocation %s in %s: %w", name, s.dir, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return r, nil
	}
	return s.readOwner(r)
}

// claim writes one owner's record content to a file once, then hard-links
// it under each candidate address until one is free: a failed candidate
// costs one link(2), and a reader never sees a partial record. The file is
// unnamed (O_TMPFILE) where the filesystem has them, so no temp file is
// left to remove or, after a crash, to sweep; and no inode is freed per
// ADD, which matters on ext4 without a journal, where allocating an inode
// skips every one freed in the last minutes. Elsewhere it is a named temp
// file.
type claim struct {
	s       *Store
	content string
	anon    int    // the unnamed file, once written; -1 before
	tmp     string // the named temp file, once written, without O_TMPFILE
}

// useTmpfile is off in tests of the named temp file path.
var useTmpfile = true

func (s *Store) newClaim(a Attachment) *claim {
	return &claim{s: s, content: strings.TrimSpace(a.ContainerID) + lineBreak + a.IfName, anon: -1}
}

// take records addr as held by the owner. It reports false when addr is
// already taken; an existing name, even a symlink, is never replaced.
func (c *claim) take(addr netip.Addr) (bool, error) {
	err := c.link(addr.String())
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("record allocation %s in %s: %w", addr, c.s.dir, err)
	}
	return true, nil
}

// link links the written content under name, writing it first on the
// first call: into an unnamed file, or into a named temp file when the
// system cannot make an unnamed file or link it (no O_TMPFILE, no /proc).
func (c *claim) link(name string) error {
	if c.tmp == "" && c.anon < 0 && useTmpfile {
		anon, err := c.s.writeUnnamed(c.content)
		if err != nil && !errors.Is(err, errNoTmpfile) {
			return err
		}
		c.anon = anon
	}
	if c.anon >= 0 {
		err := linkUnnamed(c.anon, c.s.root, name)
		if !errors.Is(err, errNoTmpfile) {
			return err
		}
		if err := c.close(); err != nil {
			return err
		}
		c.anon = -1
	}
	if c.tmp == "" {
		tmp, err := c.s.writeTemp(".", c.content)
		if err != nil {
			return err
		}
		c.tmp = tmp
	}
	return c.s.root.link(c.tmp, name)
}

// close releases the unnamed file, or removes the temp file; a leftover
// temp file after a crash is swept by GC.
func (c *claim) close() error {
	if c.anon >= 0 {
		return unix.Close(c.anon)
	}
	if c.tmp == "" {
		return nil
	}
	return c.s.removeFile(c.tmp)
}

// errNoTmpfile marks an unnamed file the system cannot make or link.
var errNoTmpfile = errors.New("no O_TMPFILE")

// writeUnnamed makes an unnamed file in the network directory holding
// content, and returns its descriptor; errNoTmpfile when the filesystem or
// kernel cannot make one.
func (s *Store) writeUnnamed(content string) (int, error) {
	fd, err := unix.Openat(s.root.fd, ".", unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EINVAL) {
			err = errNoTmpfile
		}
		return -1, fmt.Errorf("create unnamed file in %s: %w", s.dir, err)
	}
	if err := writeAll(fd, "unnamed record", content); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("write unnamed file in %s: %w", s.dir, err)
	}
	return fd, nil
}

// linkUnnamed gives the unnamed file anon the name name in d, failing
// with fs.ErrExist when the name is taken. It links the descriptor itself
// (AT_EMPTY_PATH), which needs CAP_DAC_READ_SEARCH, as a runtime's plugin
// has; without it, through /proc.
func linkUnnamed(anon int, d *dir, name string) error {
	err := unix.Linkat(anon, "", d.fd, name, unix.AT_EMPTY_PATH)
	if err == nil || errors.Is(err, unix.EEXIST) {
		return err
	}
	return linkViaProc(anon, d, name)
}

// linkViaProc links anon as linkUnnamed does, through its /proc/self/fd
// link, as open(2) describes: no capability beyond writing d, but a lookup
// in /proc, which in a new process costs more than the link.
func linkViaProc(anon int, d *dir, name string) error {
	err := unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(anon), d.fd, name, unix.AT_SYMLINK_FOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return errNoTmpfile // no /proc
	}
	return err
}

// removeFile deletes one file of the store; a missing one is not an error.
func (s *Store) removeFile(name string) error {
	if err := s.root.remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s in %s: %w", name, s.dir, err)
	}
	return nil
}

// lastReserved returns the address last handed out from range set i, or the
// zero Addr. Round-robin is best effort, as in the reference: an unreadable
// or garbled file just restarts the walk at the set's first address.
func (s *Store) lastReserved(i int) netip.Addr {
	b, err := s.readFile(lastReservedPrefix + strconv.Itoa(i))
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
// set i. An existing file is overwritten in place, as the reference does:
// on ext4 a new file and a rename cost more than half a millisecond of every
// ADD, and the file is only a round-robin hint (a kill between the write and
// the truncate leaves some whole address, never a torn one: one write call
// is not split by a signal). A first file, or a symlink planted at the
// name, is replaced atomically instead, never written through.
func (s *Store) setLastReserved(i int, addr netip.Addr) error {
	name := lastReservedPrefix + strconv.Itoa(i)
	fd, err := s.root.open(name, os.O_WRONLY, 0)
	if err != nil {
		return s.replaceFile(".", name, addr.String())
	}
	return s.overwrite(fd, name, addr.String())
}

// overwrite writes content over the file fd (named name), truncates it
// there and closes it: no new inode, no rename, so the directory, whose
// mtime seals the index, is left alone.
func (s *Store) overwrite(fd int, name, content string) error {
	err := writeAll(fd, name, content) // fd is fresh: at offset 0
	if err == nil {
		err = unix.Ftruncate(fd, int64(len(content)))
	}
	if err := errors.Join(err, unix.Close(fd)); err != nil {
		return fmt.Errorf("write %s in %s: %w", name, s.dir, err)
	}
	return nil
}

// replaceFile atomically replaces dir/name with content: write a temp file
// in dir, then rename it over name, so a crash leaves the old or the new
// content, never a torn one, and a symlink at name is replaced, not followed.
func (s *Store) replaceFile(dir, name, content string) error {
	path := filepath.Join(dir, name)
	tmp, err := s.writeTemp(dir, content)
	if err != nil {
		return err
	}
	if err := s.root.rename(tmp, path); err != nil {
		return errors.Join(fmt.Errorf("replace %s in %s: %w", path, s.dir, err), s.removeFile(tmp))
	}
	return nil
}

// createFile creates name with content, create-exclusive and 0600. It
// reports false, writing nothing, when name exists.
func (s *Store) createFile(name, content string) (bool, error) {
	fd, err := s.root.open(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("create %s in %s: %w", name, s.dir, err)
	}
	err = writeAll(fd, name, content)
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		return false, errors.Join(fmt.Errorf("write %s in %s: %w", name, s.dir, err), s.removeFile(name))
	}
	return true, nil
}

// writeTemp writes content to a new file with a random temp name in dir
// and returns its path in the store.
func (s *Store) writeTemp(dir, content string) (string, error) {
	name := filepath.Join(dir, tmpPrefix+rand.Text())
	ok, err := s.createFile(name, content)
	if err == nil && !ok {
		err = fmt.Errorf("create temp file %s in %s: %w", name, s.dir, fs.ErrExist) // 130 random bits: never
	}
	return name, err
}
