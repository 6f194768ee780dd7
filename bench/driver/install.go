package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// The rounds exec copies of the binaries, installed as an operator installs
// plugins (written into a bin directory on disk), not the files the Go
// linker wrote. The linker writes its output through a memory map, and a
// binary whose page cache comes from that maps its code into each new
// process more slowly than the same bytes written with write(2), or read
// back from disk: about 0.25 ms more per exec for nodebridge's 4.6 MB here,
// 0.07 ms for floor-add's 2.4 MB (paired runs of each pair of copies). A
// node's plugins never run from a linker's page cache.

// installDirPattern names the directory the copies go to, beside -bin.
const installDirPattern = "installed-%d-"

// install copies every binary o names into a new directory beside o.bin,
// the reference's two into a tools directory within it, and returns o with
// its paths there, and how to remove them.
func install(o options) (options, func() error, error) {
	root, err := filepath.Abs(filepath.Dir(filepath.Clean(o.bin)))
	if err != nil {
		return o, nil, err
	}
	sweepInstalled(root)
	dir, err := os.MkdirTemp(root, fmt.Sprintf(installDirPattern, os.Getpid()))
	if err != nil {
		return o, nil, fmt.Errorf("make install dir: %w", err)
	}
	remove := func() error { return os.RemoveAll(dir) }
	in := o
	in.plugin, in.bin, in.tools = filepath.Join(dir, "nodebridge"), dir, filepath.Join(dir, "tools")
	copies := [][2]string{{o.plugin, in.plugin}}
	for _, name := range []string{"nop", "floor-add", "ipam-op"} {
		copies = append(copies, [2]string{filepath.Join(o.bin, name), filepath.Join(in.bin, name)})
	}
	for _, name := range []string{"bridge", "host-local"} {
		copies = append(copies, [2]string{filepath.Join(o.tools, name), filepath.Join(in.tools, name)})
	}
	if err := os.Mkdir(in.tools, 0o755); err != nil {
		return o, nil, errors.Join(err, remove())
	}
	for _, c := range copies {
		if err := copyExecutable(c[0], c[1]); err != nil {
			return o, nil, errors.Join(err, remove())
		}
	}
	return in, remove, nil
}

// copyExecutable writes a copy of the executable from to the new file to
// with write(2) (no copy_file_range, no reflink: an installer's copy).
func copyExecutable(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("install %s: %w", from, err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return fmt.Errorf("install %s: %w", from, err)
	}
	_, err = io.Copy(struct{ io.Writer }{dst}, struct{ io.Reader }{src}) // the wrappers hide the files' ReadFrom and WriteTo
	if err = errors.Join(err, dst.Close()); err != nil {
		return fmt.Errorf("install %s as %s: %w", from, to, err)
	}
	return nil
}

// sweepInstalled removes the install dirs a killed run left in root; one
// that cannot be removed is left for the next run.
func sweepInstalled(root string) {
	dirs, _ := filepath.Glob(filepath.Join(root, "installed-*-*"))
	for _, d := range dirs {
		var pid int
		if _, err := fmt.Sscanf(filepath.Base(d), installDirPattern, &pid); err == nil && pid != os.Getpid() && !processAlive(pid) {
			_ = os.RemoveAll(d) // best effort: a stale copy only takes space
		}
	}
}
