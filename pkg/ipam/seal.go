package ipam

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// The seal says whether the index entries can be trusted: it is the pair
// of modification times of the network directory (P) and of the index
// directory (I), and the index is fresh when I is exactly P - 1 ns.
//
// Only commit sets that relation, right after a call has brought the
// entries up to date: it sets P to 1 ns before the time the kernel gave
// the call's last change, and I to 1 ns before that. Every other change
// breaks it, in the same system call that makes the change:
//   - a record created, removed or renamed by anyone (the reference, an
//     operator, a crashed call of ours) sets P to the current time, which is
//     at least the time commit started from, so never I + 1 ns, even within
//     the same clock tick;
//   - any entry written or removed sets I to the current time, and a call
//     writes entries only after its records, so I >= P from then on, until
//     its own commit.
// So a process killed at any instant leaves either exact entries and the
// relation, or no relation and a rebuild by the next locked call. Setting
// the times back by a nanosecond keeps them true to the second for anyone
// looking. Only a record rewritten in place, which neither plugin does, goes
// unseen; reading back every hit keeps even that from returning or freeing
// another's address.
//
// A filesystem that cannot store nanoseconds (ext4 with 128-byte inodes,
// ext3) cannot keep the relation: the index is then never fresh, and each
// locked call rebuilds it, which costs a scan, as before the index.

// index is the attachment index as one call of a Store sees it.
type index struct {
	s     *Store
	fresh bool                // the seal held when loaded or last committed
	found map[Attachment]bool // entries read so far, and whether each existed
}

// loadIndex compares the two times. It writes nothing, so a call without
// the lock may use it; an index path that is not a directory, a symlink
// included, is never fresh.
func (s *Store) loadIndex() (*index, error) {
	ix := &index{s: s, found: map[Attachment]bool{}}
	p, err := s.mtime(".")
	if err != nil {
		return nil, err
	}
	st, err := s.root.lstat(indexDir)
	if err == nil && isDir(st) {
		ix.fresh = st.Mtim.Nano() == p-1
	}
	return ix, nil
}

// openIndex returns an index that can be trusted, rebuilding it when it
// cannot; the caller holds the lock.
func (s *Store) openIndex() (*index, error) {
	ix, err := s.loadIndex()
	if err != nil {
		return nil, err
	}
	if !ix.fresh {
		return ix, ix.rebuild()
	}
	return ix, nil
}

// commit sets the seal; the caller has brought every entry up to date
// with the records. It is a no-op when the seal already holds.
func (ix *index) commit() error {
	p, err := ix.s.mtime(".")
	if err != nil {
		return err
	}
	i, err := ix.s.mtime(indexDir)
	if err != nil {
		return err
	}
	ix.fresh = false
	if i != p-1 {
		// Equivalent to: touch -m -d @<p - 1ns> DIR; touch -m -d @<p - 2ns> DIR/.nodebridge-index
		for _, t := range []struct {
			name  string
			mtime int64
		}{{".", p - 1}, {indexDir, p - 2}} {
			if err := ix.s.setMtime(t.name, t.mtime); err != nil {
				return err
			}
			if got, err := ix.s.mtime(t.name); err != nil || got != t.mtime {
				return err // no nanoseconds on this filesystem: left unsealed
			}
		}
	}
	ix.fresh = true
	return nil
}

// mtime returns the modification time in ns of a directory of the store,
// without following a symlink.
func (s *Store) mtime(name string) (int64, error) {
	st, err := s.root.lstat(name)
	if err != nil {
		return 0, fmt.Errorf("stat %s in %s: %w", name, s.dir, err)
	}
	return st.Mtim.Nano(), nil
}

// isDir reports whether st is a directory's.
func isDir(st *unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFDIR }

func (s *Store) setMtime(name string, ns int64) error {
	if err := s.root.setMtime(name, ns); err != nil {
		return fmt.Errorf("set mtime of %s in %s: %w", name, s.dir, err)
	}
	return nil
}
