package ipam

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// mustPool builds the pool of c or fails t.
func mustPool(t testing.TB, c Config) *Pool {
	t.Helper()
	p, err := c.Pool()
	if err != nil {
		t.Fatalf("Pool(%+v): %v", c, err)
	}
	return p
}

// poolOf is a pool with one single-range set per subnet.
func poolOf(t testing.TB, subnets ...string) *Pool {
	t.Helper()
	var c Config
	for _, s := range subnets {
		c.Ranges = append(c.Ranges, []RangeConfig{{Subnet: s}})
	}
	return mustPool(t, c)
}

// newStore opens network "net" in a fresh temp data dir.
func newStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), "net")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func att(id string) Attachment { return Attachment{ContainerID: id, IfName: "eth0"} }

// mustAlloc allocates for a and returns the addresses, or fails t.
func mustAlloc(t testing.TB, s *Store, p *Pool, a Attachment, req ...netip.Addr) []netip.Addr {
	t.Helper()
	allocs, err := s.Allocate(p, a, req)
	if err != nil {
		t.Fatalf("Allocate(%v, %v): %v", a, req, err)
	}
	var addrs []netip.Addr
	for _, al := range allocs {
		addrs = append(addrs, al.Addr.Addr())
	}
	return addrs
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

// writeFile puts a file in the store directory, as another plugin would.
func writeFile(t testing.TB, s *Store, name, content string) {
	t.Helper()
	writeTestFile(t, filepath.Join(s.Dir(), name), content)
}

// writeTestFile writes content to path.
func writeTestFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// readFile returns a file of the store directory.
func readFile(t testing.TB, s *Store, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.Dir(), name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// dirNames lists the store directory, sorted, without the index directory
// (indexNames lists that).
func dirNames(t testing.TB, s *Store) []string {
	t.Helper()
	return slices.DeleteFunc(listDir(t, s.Dir()), func(n string) bool { return n == indexDir })
}

// indexNames lists the index directory, sorted.
func indexNames(t testing.TB, s *Store) []string {
	t.Helper()
	return listDir(t, filepath.Join(s.Dir(), indexDir))
}

func listDir(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

// errLines splits a joined error into its messages.
func errLines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}
