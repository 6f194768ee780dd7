package ipam

import (
	"errors"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// dir is the network directory, held open as a descriptor that every
// access goes through with the *at system calls, as os.Root does: no name
// is looked up from a path, and no symlink is followed. A name is one path
// element, or two when it starts with the index directory. Unlike
// os.Root, dir makes no os.File for a regular file: os.File offers every
// file to the Go runtime's poller, and the first offer starts it (an epoll
// instance, an eventfd and a thread to wait on them), in a process that
// has nothing to poll.
type dir struct{ fd int }

// openDir opens the directory at path.
func openDir(path string) (*dir, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return &dir{fd: fd}, nil
}

func (d *dir) Close() error { return unix.Close(d.fd) }

// at resolves name to a directory descriptor and a last element: d's
// own, or, for "<indexDir>/x", the index directory's, opened without
// following a symlink; done closes what at opened.
func (d *dir) at(op, name string) (fd int, base string, done func(), err error) {
	parent, base, nested := strings.Cut(name, "/")
	if !nested {
		parent, base = "", name
	}
	if base == "" || base == ".." || strings.Contains(base, "/") || nested && parent != indexDir {
		return -1, "", nil, &fs.PathError{Op: op, Path: name, Err: errors.New("not a name in the network directory")}
	}
	if !nested {
		return d.fd, base, func() {}, nil
	}
	sub, err := unix.Openat(d.fd, parent, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, "", nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	return sub, base, func() { unix.Close(sub) }, nil
}

// open opens name with flag (O_NOFOLLOW and O_CLOEXEC added) and returns
// the raw descriptor. O_NONBLOCK is added too: a FIFO planted in the
// directory then cannot block the call, and a regular file ignores it.
func (d *dir) open(name string, flag int, perm uint32) (int, error) {
	at, base, done, err := d.at("open", name)
	if err != nil {
		return -1, err
	}
	defer done()
	fd, err := unix.Openat(at, base, flag|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, perm)
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return fd, nil
}

// openList opens the directory name ("." for d itself) for listing, as an
// os.File: a blocking descriptor, which the poller is never offered.
func (d *dir) openList(name string) (*os.File, error) {
	at, base, done, err := d.at("open", name)
	if err != nil {
		return nil, err
	}
	defer done()
	f, err := openDirAt(at, base)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return f, nil
}

// openDirAt opens the directory base under at, not following a symlink, as
// a blocking os.File: O_DIRECTORY refuses a FIFO, so no O_NONBLOCK is
// needed, and the poller is never offered it.
func openDirAt(at int, base string) (*os.File, error) {
	fd, err := unix.Openat(at, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), base), nil
}

// lstat stats name without following a symlink.
func (d *dir) lstat(name string) (*unix.Stat_t, error) {
	var st unix.Stat_t
	if name == "." {
		if err := unix.Fstat(d.fd, &st); err != nil {
			return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
		}
		return &st, nil
	}
	at, base, done, err := d.at("lstat", name)
	if err != nil {
		return nil, err
	}
	defer done()
	if err := unix.Fstatat(at, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: err}
	}
	return &st, nil
}

func (d *dir) mkdir(name string, perm uint32) error {
	at, base, done, err := d.at("mkdir", name)
	if err != nil {
		return err
	}
	defer done()
	if err := unix.Mkdirat(at, base, perm); err != nil {
		return &fs.PathError{Op: "mkdir", Path: name, Err: err}
	}
	return nil
}

// link gives the file oldname the new name newname too.
func (d *dir) link(oldname, newname string) error {
	return d.atTwo("link", oldname, newname, func(oldAt int, oldBase string, newAt int, newBase string) error {
		return unix.Linkat(oldAt, oldBase, newAt, newBase, 0)
	})
}

// rename moves oldname over newname, replacing whatever is there, a
// symlink included, without following it.
func (d *dir) rename(oldname, newname string) error {
	return d.atTwo("rename", oldname, newname, func(oldAt int, oldBase string, newAt int, newBase string) error {
		return unix.Renameat(oldAt, oldBase, newAt, newBase)
	})
}

// atTwo resolves oldname and newname (see at) and runs op's system call
// on them.
func (d *dir) atTwo(op, oldname, newname string, call func(oldAt int, oldBase string, newAt int, newBase string) error) error {
	oldAt, oldBase, oldDone, err := d.at(op, oldname)
	if err != nil {
		return err
	}
	defer oldDone()
	newAt, newBase, newDone, err := d.at(op, newname)
	if err != nil {
		return err
	}
	defer newDone()
	if err := call(oldAt, oldBase, newAt, newBase); err != nil {
		return &os.LinkError{Op: op, Old: oldname, New: newname, Err: err}
	}
	return nil
}

// remove removes the file, symlink or empty directory name.
func (d *dir) remove(name string) error {
	at, base, done, err := d.at("remove", name)
	if err != nil {
		return err
	}
	defer done()
	err = unix.Unlinkat(at, base, 0)
	if errors.Is(err, unix.EISDIR) {
		err = unix.Unlinkat(at, base, unix.AT_REMOVEDIR)
	}
	if err != nil {
		return &fs.PathError{Op: "remove", Path: name, Err: err}
	}
	return nil
}

// removeAll removes name and, when it is a directory, everything in it;
// a missing name is not an error. Symlinks are removed, never followed.
func (d *dir) removeAll(name string) error {
	at, base, done, err := d.at("remove", name)
	if err != nil {
		return err
	}
	defer done()
	if err := removeAllAt(at, base); err != nil {
		return &fs.PathError{Op: "remove", Path: name, Err: err}
	}
	return nil
}

func removeAllAt(at int, name string) error {
	err := unix.Unlinkat(at, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) {
		return err
	}
	f, err := openDirAt(at, name)
	if err != nil {
		return err
	}
	names, err := f.Readdirnames(-1)
	if err == nil {
		for _, n := range names {
			if err = removeAllAt(int(f.Fd()), n); err != nil {
				break
			}
		}
	}
	f.Close() // read-only directory handle: a close error loses nothing
	if err != nil {
		return err
	}
	if err := unix.Unlinkat(at, name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return nil
}

// setMtime sets name's modification time to ns, leaving its access time,
// without following a symlink.
func (d *dir) setMtime(name string, ns int64) error {
	at, base, done, err := d.at("chtimes", name)
	if err != nil {
		return err
	}
	defer done()
	times := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, unix.NsecToTimespec(ns)}
	if err := unix.UtimesNanoAt(at, base, times, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "chtimes", Path: name, Err: err}
	}
	return nil
}

// readFile reads name whole.
func (d *dir) readFile(name string) ([]byte, error) { return d.readFileMax(name, -1) }

// errTooLong is a file longer than its reader's bound.
var errTooLong = errors.New("file too long")

// readFileMax reads name whole, or fails with errTooLong past max bytes
// (max < 0: no bound).
func (d *dir) readFileMax(name string, max int) ([]byte, error) {
	fd, err := d.open(name, unix.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd) // read-only: a close error loses nothing
	b := make([]byte, 0, 512)
	for {
		if max >= 0 && len(b) > max {
			return nil, &fs.PathError{Op: "read", Path: name, Err: errTooLong}
		}
		n, err := unix.Read(fd, b[len(b):cap(b)])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: name, Err: err}
		}
		if n == 0 {
			return b, nil
		}
		b = b[:len(b)+n]
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// writeAll writes content to fd; name is for messages.
func writeAll(fd int, name, content string) error {
	b := []byte(content)
	var err error
	for len(b) > 0 {
		var n int
		n, err = unix.Write(fd, b)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			break
		}
		b = b[n:]
	}
	if err != nil {
		return &fs.PathError{Op: "write", Path: name, Err: err}
	}
	return nil
}
