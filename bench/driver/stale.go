package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// sweepStale removes what an earlier bench run left when it was killed
// before its cleanup ran: netns, and temp dirs under tmpRoot, named after a
// bench process that is gone.
func sweepStale(tmpRoot string) error {
	return errors.Join(sweepNetns(), sweepTemp(tmpRoot))
}

func sweepNetns() error {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list %s: %w", netnsDir, err)
	}
	var errs []error
	for _, e := range entries {
		pid, ok := benchPid(e.Name())
		if !ok || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		if out, err := exec.Command("ip", "netns", "del", e.Name()).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip netns del %s: %w: %s", e.Name(), err, out))
		}
	}
	return errors.Join(errs...)
}

// benchPid parses "nb<hex pid>-bench-..." and returns the pid.
func benchPid(name string) (int, bool) {
	tag, rest, ok := strings.Cut(name, "-")
	if !ok || !strings.HasPrefix(rest, "bench-") || !strings.HasPrefix(tag, "nb") {
		return 0, false
	}
	pid, err := strconv.ParseInt(tag[2:], 16, 32)
	return int(pid), err == nil && pid > 0
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0) // signal 0 probes, it delivers nothing
	return err == nil || errors.Is(err, syscall.EPERM)
}

// tempPattern names a run's temp dir after its pid, so a later run can tell
// a dead run's dir from a live one's.
const tempPattern = "nodebridge-bench-%d-"

func sweepTemp(tmpRoot string) error {
	dirs, err := filepath.Glob(filepath.Join(tmpRoot, "nodebridge-bench-*-*"))
	if err != nil {
		return fmt.Errorf("list stale temp dirs: %w", err)
	}
	var errs []error
	for _, d := range dirs {
		var pid int
		if _, err := fmt.Sscanf(filepath.Base(d), tempPattern, &pid); err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		errs = append(errs, os.RemoveAll(d))
	}
	return errors.Join(errs...)
}
