package bridge

import (
	"fmt"
	"strings"

	"github.com/nodebridge/nodebridge/pkg/ipam"
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

// readVerified returns the record in st; an empty one when there is none
// or it does not read back whole. The store reads with plain system calls
// (an os.File would start the Go runtime's poller), following no symlink,
// and a FIFO planted at the name does not block it.
func readVerified(st *ipam.Store) verified {
	b, err := st.ReadSideFile(verifiedFile, maxVerifiedSize-1)
	if err != nil {
		return verified{}
	}
	return parseVerified(b)
}

// maxVerifiedSize bounds what readVerified reads: a file of this size or
// longer is no record.
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

// writeVerified records v in st; the caller holds the store's lock. It
// overwrites the file in place rather than renaming a new file over it, so
// the directory, whose mtime stamps pkg/ipam's index, changes only when the
// file is first made; a torn write fails its checksum and reads as empty.
func writeVerified(st *ipam.Store, v verified) error {
	value := v.stamp + " | " + v.fingerprint
	if strings.ContainsAny(value, "\t\n") {
		return fmt.Errorf("record %s in %s: stamp or fingerprint is not one line", verifiedFile, st.Dir())
	}
	return st.WriteSideFile(verifiedFile, value+"\t"+checksum(value)+"\n")
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
