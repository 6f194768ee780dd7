package ipam

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Attachment names one pod interface: CNI_CONTAINERID + CNI_IFNAME.
type Attachment struct {
	ContainerID string
	IfName      string
}

// Allocation is one address handed out from a range set.
type Allocation struct {
	Addr    netip.Prefix // the address with its subnet's prefix length
	Gateway netip.Addr
}

// Store is the on-disk state of one network, <dataDir>/<network>.
//
// Every file access goes through a descriptor of that directory (dir), so
// no name, symlink or ".." can make the store read or write outside it. Allocate,
// Release and GC expect the caller to hold the lock; Lookup, Empty,
// Attachments and Full write nothing and may run without it. The flock excludes other
// Store values and processes, not goroutines sharing one Store: give each
// its own.
type Store struct {
	dir  string
	root *dir
	lock int // <dir>/lock, the file reference host-local flocks
}

// Open opens (creating if needed) the store of network under dataDir;
// an empty dataDir means DefaultDataDir. network must be one path element.
func Open(dataDir, network string) (*Store, error) {
	if network == "" {
		return nil, invalid("name", "", "empty")
	}
	if network == "." || network == ".." || strings.ContainsAny(network, "/\x00") {
		return nil, invalid("name", network, "not usable as a directory name")
	}
	if dataDir == "" {
		dataDir = DefaultDataDir
	}
	dir := filepath.Join(dataDir, network)
	// 0755 as the reference, so either plugin can use a directory the other made.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create network directory %s: %w", dir, err)
	}
	root, err := openDir(dir)
	if err != nil {
		return nil, fmt.Errorf("open network directory %s: %w", dir, err)
	}
	if err := checkOwned(root, dir); err != nil {
		return nil, errors.Join(err, root.Close())
	}
	lock, err := root.open(lockName, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open lock file in %s: %w", dir, err), root.Close())
	}
	return &Store{dir: dir, root: root, lock: lock}, nil
}

// readFile reads name in the store's directory.
func (s *Store) readFile(name string) ([]byte, error) { return s.root.readFile(name) }

// ReadSideFile reads name, a file beside the records whose name starts
// with a dot (so neither host-local nor the store reads it as an
// allocation), whole; a file of more than max bytes is an error. Like
// every read of the store it follows no symlink and a FIFO does not block.
func (s *Store) ReadSideFile(name string, max int) ([]byte, error) {
	if !strings.HasPrefix(name, ".") {
		return nil, fmt.Errorf("side file %q in %s: not a dot name", name, s.dir)
	}
	return s.root.readFileMax(name, max)
}

// WriteSideFile writes content over the side file name (see ReadSideFile),
// in place, creating it (mode 0600) when missing: the directory, whose
// mtime seals the index, changes only when the file is first made.
func (s *Store) WriteSideFile(name, content string) error {
	if !strings.HasPrefix(name, ".") {
		return fmt.Errorf("side file %q in %s: not a dot name", name, s.dir)
	}
	fd, err := s.root.open(name, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open %s in %s: %w", name, s.dir, err)
	}
	return s.overwrite(fd, name, content)
}

// checkOwned refuses a network directory that is not the effective
// user's, or that group or others may write: whoever may write it can hold
// its lock (every ADD and DEL of the network waits, then fails) or remove
// records (addresses are handed out twice). It costs one fstatat of "."
// on the directory already open: no path is looked up again. The dataDir
// above is not checked: one Open creates it 0755 as the effective user,
// and one found there is the operator's, shared with the reference
// host-local, which does not check it either.
func checkOwned(root *dir, path string) error {
	st, err := root.lstat(".")
	if err != nil {
		return fmt.Errorf("stat network directory %s: %w", path, err)
	}
	euid := os.Geteuid()
	var problems []string
	if int(st.Uid) != euid {
		problems = append(problems, fmt.Sprintf("owned by uid %d", st.Uid))
	}
	switch perm := st.Mode & 0o777; {
	case perm&0o022 == 0o022:
		problems = append(problems, "writable by group and others")
	case perm&0o020 != 0:
		problems = append(problems, "writable by group")
	case perm&0o002 != 0:
		problems = append(problems, "writable by others")
	}
	if len(problems) == 0 {
		return nil
	}
	owner := "root"
	if euid != 0 {
		owner = fmt.Sprintf("uid %d", euid)
	}
	return fmt.Errorf("%w: %s: %s; chown %s and chmod go-w it, or remove it",
		ErrUnsafeDir, path, strings.Join(problems, ", "), owner)
}

// Dir is the network directory.
func (s *Store) Dir() string { return s.dir }

// Close releases the lock if held and closes the directory handle.
func (s *Store) Close() error {
	// Closing the only descriptor of the lock file drops the flock.
	var errs []error
	if err := unix.Close(s.lock); err != nil {
		errs = append(errs, fmt.Errorf("close lock file in %s: %w", s.dir, err))
	}
	if err := s.root.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close network directory %s: %w", s.dir, err))
	}
	return errors.Join(errs...)
}

// validate rejects an attachment whose record would not read back as itself:
// the record is "id\r\nifname" with the id trimmed, so an empty id or ifname,
// or a line break in either, would parse as someone else's or a legacy record.
func (a Attachment) validate() error {
	switch {
	case strings.TrimSpace(a.ContainerID) == "":
		return invalid("container ID", a.ContainerID, "empty")
	case strings.ContainsAny(a.ContainerID, "\r\n"):
		return invalid("container ID", a.ContainerID, "contains a line break")
	case a.IfName == "" || strings.TrimSpace(a.IfName) != a.IfName:
		return invalid("ifname", a.IfName, "empty or padded with space")
	case strings.ContainsAny(a.IfName, "\r\n"):
		return invalid("ifname", a.IfName, "contains a line break")
	}
	return nil
}
