package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// netnsDir is where named netns live, as `ip netns` and CNI runtimes keep them.
const netnsDir = "/run/netns/"

// nsSet creates the bench's named netns and remembers them, so that every
// way out of the run (error, Ctrl-C) removes them all.
//
// Names start "nb<pid in hex>-": the test suite's netns guard takes such a
// name for another process's netns, so a bench run beside `go test` does not
// fail the tests.
type nsSet struct {
	prefix string
	mu     sync.Mutex
	next   int
	live   map[string]bool
}

func newNSSet() *nsSet {
	return &nsSet{prefix: testenv.NetnsPrefix() + "bench-", live: map[string]bool{}}
}

// add creates a netns with loopback up and returns its path.
//
// Equivalent to: ip netns add NAME; ip -n NAME link set lo up
func (s *nsSet) add(kind string) (string, error) {
	s.mu.Lock()
	s.next++
	name := fmt.Sprintf("%s%s-%d", s.prefix, kind, s.next)
	s.live[name] = true
	s.mu.Unlock()
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		s.forget(name)
		return "", fmt.Errorf("ip netns add %s: %w: %s", name, err, out)
	}
	path := netnsDir + name
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return "", errors.Join(fmt.Errorf("ip -n %s link set lo up: %w: %s", name, err, out), s.del(path))
	}
	return path, nil
}

// del removes the netns at path; one already gone is not an error.
//
// Equivalent to: ip netns del NAME
func (s *nsSet) del(path string) error {
	name := strings.TrimPrefix(path, netnsDir)
	defer s.forget(name)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns del %s: %w: %s", name, err, out)
	}
	return nil
}

func (s *nsSet) forget(name string) {
	s.mu.Lock()
	delete(s.live, name)
	s.mu.Unlock()
}

// delAll removes every netns still live, and reports those it could not.
func (s *nsSet) delAll() error {
	s.mu.Lock()
	var names []string
	for n := range s.live {
		names = append(names, n)
	}
	s.mu.Unlock()
	var errs []error
	for _, n := range names {
		errs = append(errs, s.del(netnsDir+n))
	}
	return errors.Join(errs...)
}
