package main

import (
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"syscall"

	"github.com/vishvananda/netns"
)

// inNetns runs fn on a fresh OS thread that has entered the netns at path, so
// every process fn starts is born in that netns, as a runtime execs a plugin
// in the node's netns. It costs nothing per exec, unlike `ip netns exec`
// (which unshares a mount ns and remounts /sys, ~2-3 ms), so only the plugin
// process is timed.
//
// Before fn runs, a child process proves it really starts in that netns.
// The thread never leaves the netns: it stays locked and exits with its
// goroutine, so no other goroutine can inherit it.
func inNetns(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked, see above
		errc <- enterAndRun(path, fn)
	}()
	return <-errc
}

func enterAndRun(path string, fn func() error) error {
	h, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", path, err)
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		return fmt.Errorf("enter netns %s: %w", path, err)
	}
	if err := checkChildNetns(path); err != nil {
		return err
	}
	return fn()
}

// checkChildNetns execs readlink in the calling thread and compares the
// netns it reports with the one at path.
func checkChildNetns(path string) error {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return fmt.Errorf("stat netns %s: %w", path, err)
	}
	out, err := exec.Command("readlink", "/proc/self/ns/net").Output()
	if err != nil {
		return fmt.Errorf("readlink /proc/self/ns/net in a child meant for %s: %w", path, err)
	}
	got, want := strings.TrimSpace(string(out)), fmt.Sprintf("net:[%d]", st.Ino)
	if got != want {
		return fmt.Errorf("child process runs in %s, not in %s (%s): refusing to go on", got, path, want)
	}
	return nil
}

// runIn runs argv inside the netns at path and returns its combined output.
func runIn(path string, argv ...string) (string, error) {
	var out []byte
	err := inNetns(path, func() error {
		var err error
		out, err = exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s in %s: %w: %s", strings.Join(argv, " "), path, err, out)
		}
		return nil
	})
	return string(out), err
}
