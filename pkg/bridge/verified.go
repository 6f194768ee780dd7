package bridge

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// verifiedFile, in the network's store directory, records when the
// network's rules were last found in place (see ensureRules). Its name
// starts with a dot, so neither host-local nor pkg/ipam reads it as an
// allocation. Name and content are those of the versions that kept it as
// an ipam "note", so a node running both during an upgrade keeps one record.
const verifiedFile = ".nodebridge-note-rules"

// verified is the record: the backend's stamp and the fingerprint of the
// network's own objects, each with what the rules were built from.
type verified struct {
	stamp, fingerprint string
}

// readVerified returns the record in dir; an empty one when there is none
// or it does not read back whole.
func readVerified(dir string) verified {
	f, err := os.OpenFile(filepath.Join(dir, verifiedFile), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0) // O_NONBLOCK: see ipam.Store.open
	if err != nil {
		return verified{}
	}
	defer f.Close() // read-only: a close error loses nothing
	b, err := io.ReadAll(f)
	if err != nil {
		return verified{}
	}
	return parseVerified(b)
}

// parseVerified reads "STAMP | FINGERPRINT\tCRC32\n"; anything else, a
// torn write say, is an empty record.
func parseVerified(b []byte) verified {
	body, ok := strings.CutSuffix(string(b), "\n")
	value, sum, ok2 := strings.Cut(body, "\t")
	if !ok || !ok2 || sum != checksum(value) {
		return verified{}
	}
	s, fp, _ := strings.Cut(value, " | ")
	return verified{stamp: s, fingerprint: fp}
}

// writeVerified records v in dir; the caller holds the store's lock. It
// overwrites the file in place rather than renaming a new file over it, so
// the directory, whose mtime stamps pkg/ipam's index, changes only when the
// file is first made; a torn write fails its checksum and reads as empty.
func writeVerified(dir string, v verified) error {
	value := v.stamp + " | " + v.fingerprint
	if strings.ContainsAny(value, "\t\n") {
		return fmt.Errorf("record %s in %s: stamp or fingerprint is not one line", verifiedFile, dir)
	}
	content := value + "\t" + checksum(value) + "\n"
	f, err := os.OpenFile(filepath.Join(dir, verifiedFile), os.O_WRONLY|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o600)
	if err != nil {
		return fmt.Errorf("open %s in %s: %w", verifiedFile, dir, err)
	}
	_, err = f.WriteAt([]byte(content), 0)
	if err == nil {
		err = f.Truncate(int64(len(content)))
	}
	if err := errors.Join(err, f.Close()); err != nil {
		return fmt.Errorf("write %s in %s: %w", verifiedFile, dir, err)
	}
	return nil
}

// checksum is the CRC-32 (IEEE) of v in hex, computed bit by bit: a record
// is a few hundred bytes, and hash/crc32 builds 8 KiB of tables on its first
// use in a process, which cost more than the record.
func checksum(v string) string {
	crc := ^uint32(0)
	for i := range len(v) {
		crc ^= uint32(v[i])
		for range 8 {
			crc = crc>>1 ^ 0xedb88320&-(crc&1)
		}
	}
	return fmt.Sprintf("%08x", ^crc)
}
