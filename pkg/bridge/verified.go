package bridge

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
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
// or it does not read back whole. It reads with plain system calls: an
// os.File would start the Go runtime's poller, and O_NONBLOCK keeps a FIFO
// planted at the name from blocking the call.
func readVerified(dir string) verified {
	fd, err := unix.Open(filepath.Join(dir, verifiedFile), unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return verified{}
	}
	defer unix.Close(fd)      // read-only: a close error loses nothing
	b := make([]byte, 0, 512) // a record is a few hundred bytes, more with many CIDRs
	for len(b) < maxVerifiedSize {
		n, err := unix.Read(fd, b[len(b):cap(b)])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return verified{}
		}
		if n == 0 {
			return parseVerified(b)
		}
		if b = b[:len(b)+n]; len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
	return verified{}
}

// maxVerifiedSize bounds what readVerified reads: a longer file is no record.
const maxVerifiedSize = 1 << 20

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
	fd, err := unix.Open(filepath.Join(dir, verifiedFile), unix.O_WRONLY|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("open %s in %s: %w", verifiedFile, dir, err)
	}
	_, err = unix.Pwrite(fd, []byte(content), 0)
	if err == nil {
		err = unix.Ftruncate(fd, int64(len(content)))
	}
	if err := errors.Join(err, unix.Close(fd)); err != nil {
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
