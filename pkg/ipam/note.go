package ipam

import (
	"fmt"
	"hash/crc32"
	"os"
	"strings"
	"syscall"
)

// notePrefix starts the names of the notes callers keep beside the
// allocations. A note never parses as an address and never reads as a
// record, so both plugins' walks pass over it.
const notePrefix = ".nodebridge-note-"

// Note returns the value last stored under key, or "" when there is none or
// it does not read back whole.
func (s *Store) Note(key string) string {
	b, err := s.root.ReadFile(notePrefix + key)
	if err != nil {
		return ""
	}
	body, ok := strings.CutSuffix(string(b), "\n")
	value, sum, ok2 := strings.Cut(body, "\t")
	if !ok || !ok2 || sum != noteSum(value) {
		return ""
	}
	return value
}

// SetNote stores value under key (a short word) for a later Note. It
// overwrites the note in place rather than renaming a new file over it, so
// the network directory, whose mtime stamps the index, changes only when
// the note is first made; a torn write fails its checksum and reads as "".
func (s *Store) SetNote(key, value string) error {
	if key == "" || strings.ContainsAny(key, "/\x00") || strings.ContainsAny(value, "\t\n") {
		return fmt.Errorf("note %q: key must be a plain word and the value one line", key)
	}
	f, err := s.root.OpenFile(notePrefix+key, os.O_WRONLY|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("open note %s in %s: %w", key, s.dir, err)
	}
	return s.overwrite(f, notePrefix+key, value+"\t"+noteSum(value)+"\n")
}

func noteSum(v string) string { return fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(v))) }
