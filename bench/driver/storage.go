package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// storage describes where the rounds keep their dataDirs: the filesystem
// and what creating a small file there costs, before the rounds and after
// them. host-local and nodebridge create a file or two per ADD, so a slow
// directory shows in both plugins' ADDs; the figures let a reader compare
// runs on different disks, and see a filesystem that slows down as files
// come and go (ext4 without a journal skips inodes freed in the last
// minutes when it allocates one).
type storage struct {
	Dir         string  `json:"dir"`
	FS          string  `json:"fs"`
	CreateStart float64 `json:"file_create_p50_us_start"` // O_CREAT|O_EXCL of a new file, µs
	CreateEnd   float64 `json:"file_create_p50_us_end"`
}

// probeFiles is how many files probeStorage creates.
const probeFiles = 50

// probeCreate times probeFiles creations of small files in a fresh
// directory under dir, the way an allocation file is made, removes it, and
// returns the median in µs.
func probeCreate(dir string) (float64, error) {
	d, err := os.MkdirTemp(dir, "probe-")
	if err != nil {
		return 0, fmt.Errorf("probe %s: %w", dir, err)
	}
	times := make([]float64, 0, probeFiles)
	for i := range probeFiles {
		start := time.Now()
		fd, err := unix.Open(filepath.Join(d, fmt.Sprint(i)), unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return 0, errors.Join(fmt.Errorf("probe %s: create: %w", d, err), os.RemoveAll(d))
		}
		times = append(times, float64(time.Since(start).Nanoseconds())/1e3)
		unix.Close(fd)
	}
	slices.Sort(times)
	return times[len(times)/2], os.RemoveAll(d)
}

// fsName names the filesystem holding dir, or gives its magic number.
func fsName(dir string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return "unknown"
	}
	switch st.Type {
	case unix.EXT4_SUPER_MAGIC:
		return "ext4"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs"
	}
	return fmt.Sprintf("0x%x", st.Type)
}

func (s storage) String() string {
	return fmt.Sprintf("%s (%s; a file create takes %.0f µs before the rounds, %.0f µs after: p50 of %d)",
		s.Dir, s.FS, s.CreateStart, s.CreateEnd, probeFiles)
}
