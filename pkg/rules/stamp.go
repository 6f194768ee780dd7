package rules

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Stamper is a Backend that can name the current state of the host's rules
// without reading them: equal stamps taken at two moments mean no rule of the
// netns changed in between, so rules verified at the first are still in place.
// An empty stamp means "unknown": verify every time.
type Stamper interface {
	Stamp(ctx context.Context) (string, error)
}

var (
	_ Stamper = (*IPTables)(nil)
	_ Stamper = (*NFTables)(nil)
)

// Stamp is the nftables ruleset generation of the current netns, with the
// netns and boot it belongs to. Every nftables commit, iptables-nft's
// included, bumps the generation. With iptables-legacy, whose changes do not,
// the stamp is empty.
func (t *IPTables) Stamp(ctx context.Context) (string, error) {
	if t.variant() != variantNFT {
		return "", nil
	}
	return generationStamp()
}

// Stamp is the generation stamp, which every change to table inet
// nodebridge moves. It is empty for a backend programming another netns
// than the caller's (tests).
func (b *NFTables) Stamp(ctx context.Context) (string, error) {
	if b.netns != 0 {
		return "", nil
	}
	return generationStamp()
}

// generationStamp is the generation of the caller's netns with the netns's
// identity and the boot: generations restart with each netns and boot.
func generationStamp() (string, error) {
	gen, self, err := nftGenerationOf(0, true)
	if err != nil {
		return "", err
	}
	boot, err := bootID()
	if err != nil {
		return "", fmt.Errorf("read boot id: %w", err)
	}
	return fmt.Sprintf("nft %s %d:%d %d", boot, self[0], self[1], gen), nil
}

// bootID is the kernel's random boot id, read with plain system calls:
// os.ReadFile would register the /proc file with the Go runtime's poller.
func bootID() (string, error) {
	fd, err := syscall.Open("/proc/sys/kernel/random/boot_id", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer syscall.Close(fd)
	var buf [64]byte // a UUID and a newline
	n, err := syscall.Read(fd, buf[:])
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(buf[:n])), nil
}

// The variants of iptables, as iptablesVariant names them.
const (
	variantNone   = ""       // iptables-save is not installed
	variantNFT    = "nft"    // iptables-nft: its rules are nftables objects
	variantLegacy = "legacy" // iptables-legacy, or unknown: out of nftables' sight
)

// iptablesVariant tells which iptables iptables-save is, from where its
// alternatives symlinks lead (no exec): the first iptables-save in PATH
// that exec would run, followed link by link with readlink, one system call
// each, where exec.LookPath and filepath.EvalSymlinks stat every PATH entry
// and every path component (about 0.05 ms of every ADD that checks its
// rules' stamp).
func iptablesVariant() string {
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if !filepath.IsAbs(dir) {
			continue // exec refuses a relative PATH entry (exec.ErrDot)
		}
		target, ok := followLinks(filepath.Join(dir, "iptables-save"))
		if !ok {
			continue
		}
		if strings.Contains(filepath.Base(target), "nft") {
			return variantNFT
		}
		return variantLegacy
	}
	return variantNone
}

// followLinks follows p's symlinks to what they end at, and reports
// whether that is an executable file.
func followLinks(p string) (string, bool) {
	for range 40 { // the kernel's own limit on a path's links
		link, err := os.Readlink(p)
		if errors.Is(err, syscall.EINVAL) { // not a link: the end
			var st syscall.Stat_t
			ok := syscall.Stat(p, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFREG && st.Mode&0o111 != 0
			return p, ok
		}
		if err != nil {
			return "", false
		}
		if !filepath.IsAbs(link) {
			link = filepath.Join(filepath.Dir(p), link)
		}
		p = link
	}
	return "", false
}
