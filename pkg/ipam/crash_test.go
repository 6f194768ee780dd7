package ipam

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestIndexRepairs damages the index as a crash, an operator or a planted
// file could, after nodebridge allocated p1 (10.0.0.2) and p2 (10.0.0.3),
// and checks that no call trusts the damage: Lookup still reports what the
// records say, and the next locked call leaves an exact index.
func TestIndexRepairs(t *testing.T) {
	idx := func(s *Store, name string) string { return filepath.Join(s.Dir(), indexDir, name) }
	tests := []struct {
		name   string
		damage func(t *testing.T, s *Store)
	}{
		{"index removed", func(t *testing.T, s *Store) { removeAll(t, filepath.Join(s.Dir(), indexDir)) }},
		{"index is a file", func(t *testing.T, s *Store) {
			removeAll(t, filepath.Join(s.Dir(), indexDir))
			writeFile(t, s, indexDir, "p1\r\neth0")
		}},
		{"index is a symlink to the network directory", func(t *testing.T, s *Store) {
			removeAll(t, filepath.Join(s.Dir(), indexDir))
			symlink(t, ".", filepath.Join(s.Dir(), indexDir))
		}},
		{"garbled entry, seal intact", func(t *testing.T, s *Store) {
			writeTestFile(t, idx(s, entryName(att("p1"))), "garbage") // in place: no directory change
		}},
		{"another's entry copied in place", func(t *testing.T, s *Store) {
			writeTestFile(t, idx(s, entryName(att("p1"))), readTestFile(t, idx(s, entryName(att("p2")))))
		}},
		{"torn new entry, before commit", func(t *testing.T, s *Store) {
			// Killed inside Allocate of p3: record written, entry half written.
			writeFile(t, s, "10.0.0.7", "p3\r\neth0")
			content := entry{owner: att("p3"), names: []string{"10.0.0.7"}}.encode()
			writeTestFile(t, idx(s, entryName(att("p3"))), content[:len(content)/2])
		}},
		{"entry written, before commit", func(t *testing.T, s *Store) {
			writeFile(t, s, "10.0.0.7", "p3\r\neth0")
			writeTestFile(t, idx(s, entryName(att("p3"))), entry{owner: att("p3"), names: []string{"10.0.0.7"}}.encode())
		}},
		{"record removed, before the entry", func(t *testing.T, s *Store) { removeTestFile(t, s, "10.0.0.3") }},
		{"between the two times of a commit", func(t *testing.T, s *Store) {
			writeFile(t, s, "10.0.0.7", "p3\r\neth0")
			setMtime(t, s.Dir(), mtimeOf(t, s.Dir()).Add(-time.Nanosecond))
		}},
		{"leftover temp files", func(t *testing.T, s *Store) {
			writeTestFile(t, idx(s, tmpPrefix+"crashed"), "p4\r\neth0")
			writeFile(t, s, tmpPrefix+"crashed", "p4\r\neth0")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, s := poolOf(t, "10.0.0.0/24"), newStore(t)
			mustAlloc(t, s, p, att("p1"))
			mustAlloc(t, s, p, att("p2"))
			tt.damage(t, s)
			truth := scanHeld(t, s)
			for _, a := range []Attachment{att("p1"), att("p2"), att("p3"), att("p4")} {
				if got := mustLookup(t, s, a); !slices.Equal(got, truth[a]) {
					t.Errorf("Lookup(%v) = %v, want %v", a, got, truth[a])
				}
			}
			// A garbled entry under an intact seal is found when its
			// attachment is next used, so use p1's.
			if got := mustRelease(t, s, att("p1")); !slices.Equal(got, truth[att("p1")]) {
				t.Errorf("Release(p1) = %v, want %v", got, truth[att("p1")])
			}
			checkIndex(t, s)
			if _, err := s.GC(nil); err != nil {
				t.Fatal(err)
			}
			checkIndex(t, s)
			if names := dirNames(t, s); !slices.Equal(names, []string{"last_reserved_ip.0", "lock"}) {
				t.Errorf("directory after GC of everything: %v", names)
			}
		})
	}
}

// TestPlantedSymlinks checks the index is never written through a symlink
// planted in place of its directory or of an entry, even one pointing out
// of the store.
func TestPlantedSymlinks(t *testing.T) {
	p, s := poolOf(t, "10.0.0.0/24"), newStore(t)
	outside := t.TempDir()
	victim := filepath.Join(outside, "victim")
	writeTestFile(t, victim, "keep")
	removeAll(t, filepath.Join(s.Dir(), indexDir))
	symlink(t, outside, filepath.Join(s.Dir(), indexDir))
	mustAlloc(t, s, p, att("p1"))
	checkIndex(t, s)
	symlink(t, victim, filepath.Join(s.Dir(), indexDir, entryName(att("p2"))))
	symlink(t, victim, filepath.Join(s.Dir(), indexDir, entryName(att("p1"))+".x"))
	mustAlloc(t, s, p, att("p2"))
	mustRelease(t, s, att("p2"))
	checkIndex(t, s)
	if got := listDir(t, outside); !slices.Equal(got, []string{"victim"}) || readTestFile(t, victim) != "keep" {
		t.Errorf("outside the store: %v, victim %q", got, readTestFile(t, victim))
	}
}

// TestPlantedEntryUnderSeal: a symlink or a directory planted as an entry
// behind a seal that still holds (the times put back) is read as a corrupt
// entry, which rebuilds the index, not as an error every ADD repeats.
func TestPlantedEntryUnderSeal(t *testing.T) {
	for name, plant := range map[string]func(path string){
		"symlink":   func(path string) { symlink(t, "10.0.0.2", path) },
		"directory": func(path string) { mkdirTest(t, path) },
		"socket": func(path string) { // open(2) answers ENXIO
			if err := unix.Mknod(path, unix.S_IFSOCK|0o600, 0); err != nil {
				t.Fatal(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			p, s := poolOf(t, "10.0.0.0/24"), newStore(t)
			mustAlloc(t, s, p, att("p1"))
			plant(filepath.Join(s.Dir(), indexDir, entryName(att("p2"))))
			ix, err := s.loadIndex()
			if err != nil {
				t.Fatal(err)
			}
			if err := ix.commit(); err != nil || !ix.fresh {
				t.Fatalf("reseal: %v (fresh %v)", err, ix.fresh)
			}
			mustAlloc(t, s, p, att("p2"))
			checkIndex(t, s)
		})
	}
}

func mkdirTest(t testing.TB, path string) {
	t.Helper()
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
}

// crashChildEnv makes the test binary a worker for TestKilledAnyInstant
// (see TestMain): it allocates and releases in the network directory the
// variable names until killed.
const (
	crashChildEnv = "NODEBRIDGE_IPAM_CRASH_DIR"
	crashRoundEnv = "NODEBRIDGE_IPAM_CRASH_ROUND" // keeps each round's pods apart
)

// TestMain runs the test binary as a crash worker when crashChildEnv is set.
func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		err := crashWorker(dir)
		fmt.Fprintln(os.Stderr, "crash worker:", err) // it only returns on failure
		os.Exit(2)
	}
	os.Exit(m.Run())
}

// TestKilledAnyInstant kills a worker process doing ADDs and DELs with
// SIGKILL at random instants, and checks after each kill that the store is
// sound: every record has an owner (so DEL or GC can free it), the next
// locked call leaves an exact index, and Lookup agrees with the records.
func TestKilledAnyInstant(t *testing.T) {
	data := t.TempDir()
	rounds := 40
	if testing.Short() {
		rounds = 10
	}
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+filepath.Join(data, "net"), fmt.Sprintf("%s=%d", crashRoundEnv, round))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		ready, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill at a random instant once the worker is past its start-up.
		if _, err := bufio.NewReader(ready).ReadString('\n'); err != nil {
			cmd.Wait()
			t.Fatalf("round %d: worker never got going: %v\n%s", round, err, stderr.Bytes())
		}
		time.Sleep(time.Duration(rand.IntN(20_000)) * time.Microsecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
			t.Fatalf("round %d: worker ended by itself: %v\n%s", round, err, stderr.Bytes())
		}
		checkAfterCrash(t, data, round)
	}
	s := lockedStore(t, data)
	defer s.Close()
	if _, err := s.GC(nil); err != nil {
		t.Fatal(err)
	}
	checkIndex(t, s)
	if names := dirNames(t, s); !slices.Equal(names, []string{"last_reserved_ip.0", "last_reserved_ip.1", "lock"}) {
		t.Errorf("directory after GC of everything: %v", names)
	}
}

// checkAfterCrash checks the store after a kill, and unlocks it again for
// the next worker.
func checkAfterCrash(t *testing.T, data string, round int) {
	t.Helper()
	s := lockedStore(t, data)
	defer s.Close()
	truth := scanHeld(t, s)
	recs, _, err := s.scan()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.owner.ContainerID == "" {
			t.Errorf("round %d: record %s has no owner: DEL and GC cannot free it", round, r.name)
		}
	}
	locked(t, s)
	checkIndex(t, s)
	for a, want := range truth {
		if got := mustLookup(t, s, a); !slices.Equal(got, want) {
			t.Errorf("round %d: Lookup(%v) = %v, want %v", round, a, got, want)
		}
	}
}

// crashWorker allocates and releases until killed, each call a fresh Store
// as a plugin process would have; pods of earlier rounds are released too.
func crashWorker(dir string) error {
	p, err := (&Config{Ranges: [][]RangeConfig{{{Subnet: "10.0.0.0/24"}}, {{Subnet: "fd00::/120"}}}}).Pool()
	if err != nil {
		return err
	}
	round := os.Getenv(crashRoundEnv)
	for i := 0; ; i++ {
		a := Attachment{ContainerID: fmt.Sprintf("r%s-%d", round, i), IfName: "eth0"}
		old := Attachment{ContainerID: fmt.Sprintf("r%s-%d", round, i-3), IfName: "eth0"}
		err := withLock(dir, func(s *Store) error {
			_, err := s.Allocate(p, a, nil)
			return err
		})
		if err == nil || errors.Is(err, ErrExhausted) {
			err = withLock(dir, func(s *Store) error { _, err := s.Release(old); return err })
		}
		if err != nil {
			return err
		}
		if i == 0 {
			fmt.Println("going") // TestKilledAnyInstant waits for this line
		}
	}
}

func withLock(dir string, op func(*Store) error) error {
	s, err := Open(filepath.Dir(dir), filepath.Base(dir))
	if err != nil {
		return err
	}
	err = s.Lock(context.Background())
	if err == nil {
		err = op(s)
	}
	return errors.Join(err, s.Close())
}

// lockedStore opens network "net" of data and takes its lock; the caller
// closes it.
func lockedStore(t *testing.T, data string) *Store {
	t.Helper()
	s, err := Open(data, "net")
	if err != nil {
		t.Fatal(err)
	}
	if err := lockWithin(t, s, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	return s
}

// scanHeld is what each attachment holds according to the records alone.
func scanHeld(t testing.TB, s *Store) map[Attachment][]netip.Addr {
	t.Helper()
	recs, _, err := s.scan()
	if err != nil {
		t.Fatal(err)
	}
	held := map[Attachment][]netip.Addr{}
	for _, r := range recs {
		if r.owner.ContainerID != "" {
			held[r.owner] = append(held[r.owner], r.addr)
		}
	}
	return held
}

func removeAll(t testing.TB, path string) {
	t.Helper()
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
}

func symlink(t testing.TB, target, path string) {
	t.Helper()
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}

func readTestFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
