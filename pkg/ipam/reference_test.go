package ipam

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// hostLocal finds the reference host-local binary: $NODEBRIDGE_HOST_LOCAL,
// else where scripts/install-deps.sh puts it. Without it the test skips, or
// fails under CI=true.
func hostLocal(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("NODEBRIDGE_HOST_LOCAL"); bin != "" {
		return bin
	}
	return testenv.Tool(t, "host-local")
}

// refCmd prepares a reference host-local call on network "net" in dataDir.
func refCmd(ctx context.Context, t *testing.T, bin, dataDir, verb string, a Attachment) *exec.Cmd {
	t.Helper()
	conf, err := json.Marshal(map[string]any{
		"cniVersion": "1.0.0",
		"name":       "net",
		"ipam": map[string]any{
			"type": "host-local", "dataDir": dataDir,
			"ranges": [][]map[string]string{{{"subnet": "10.0.0.0/24"}}, {{"subnet": "fd00::/64"}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = []string{"CNI_COMMAND=" + verb, "CNI_CONTAINERID=" + a.ContainerID, "CNI_IFNAME=" + a.IfName,
		"CNI_NETNS=/var/run/netns/nb-unused", "CNI_PATH=/nonexistent"} // host-local never opens the netns
	cmd.Stdin = bytes.NewReader(conf)
	return cmd
}

// refRun runs a reference call and returns the addresses of its result.
func refRun(t *testing.T, bin, dataDir, verb string, a Attachment) []netip.Addr {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := refCmd(ctx, t, bin, dataDir, verb, a).Output()
	if err != nil {
		t.Fatalf("host-local %s %v: %v\n%s", verb, a, err, out)
	}
	return resultAddrs(t, out)
}

func resultAddrs(t *testing.T, out []byte) []netip.Addr {
	t.Helper()
	if len(bytes.TrimSpace(out)) == 0 {
		return nil
	}
	var res struct {
		IPs []struct{ Address netip.Prefix }
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("host-local result %s: %v", out, err)
	}
	var got []netip.Addr
	for _, ip := range res.IPs {
		got = append(got, ip.Address.Addr())
	}
	return got
}

// TestReferenceHostLocal runs the reference plugin and the Store on one
// data directory, alternately, and checks each sees and frees the other's
// allocations, follows its round-robin point, and honours its lock.
func TestReferenceHostLocal(t *testing.T) {
	bin, data, p, s := handOver(t)
	steps := []handOverStep{
		{"ref", "ADD", att("c1"), []string{"10.0.0.2", "fd00::2"}},
		{"nb", "ADD", att("c2"), []string{"10.0.0.3", "fd00::3"}},
		{"ref", "ADD", att("c3"), []string{"10.0.0.4", "fd00::4"}},
		{"nb", "ADD", att("c3"), []string{"10.0.0.4", "fd00::4"}}, // the reference's record counts as held
		{"ref", "DEL", att("c2"), nil},
		{"nb", "DEL", att("c1"), []string{"10.0.0.2", "fd00::2"}},
		{"ref", "ADD", att("c5"), []string{"10.0.0.5", "fd00::5"}},
		{"nb", "GC", att("c3"), nil}, // keeps c3 only: frees the reference's c5
	}
	for i, st := range steps {
		got := runStep(t, bin, data, s, p, st.who, st.verb, st.a)
		if !slices.Equal(got, addrs(st.want...)) {
			t.Errorf("step %d: %s %s %v = %v, want %v", i, st.who, st.verb, st.a, got, st.want)
		}
	}
	got, err := s.Attachments()
	if want := []Attachment{att("c3")}; err != nil || !slices.Equal(got, want) {
		t.Errorf("Attachments at the end = %v, %v; want %v", got, err, want)
	}
	testReferenceWaitsForLock(t, bin, data, s)
}

// TestReferenceSharesIndexedState hands a network back and forth between
// the reference plugin and the Store with its index: each sees, keeps and
// frees the other's allocations, nothing is handed out twice, and the
// reference, which reads every file under the network directory, never
// takes an index file for a record.
func TestReferenceSharesIndexedState(t *testing.T) {
	bin, data, p, s := handOver(t)
	steps := []handOverStep{
		{"ref", "ADD", att("c1"), []string{"10.0.0.2", "fd00::2"}},
		{"ref", "ADD", att("c2"), []string{"10.0.0.3", "fd00::3"}},
		{"ref", "ADD", att("c3"), []string{"10.0.0.4", "fd00::4"}},
		{"nb", "LOOKUP", att("c1"), []string{"10.0.0.2", "fd00::2"}}, // no index yet
		{"nb", "ADD", att("c2"), []string{"10.0.0.3", "fd00::3"}},    // builds it; c2's records count as held
		{"nb", "ADD", att("c4"), []string{"10.0.0.5", "fd00::5"}},
		{"nb", "DEL", att("c1"), []string{"10.0.0.2", "fd00::2"}},
		{"nb", "LOOKUP", att("c1"), nil},
		{"ref", "ADD", att("c5"), []string{"10.0.0.6", "fd00::6"}}, // behind the index's back
		{"nb", "LOOKUP", att("c5"), []string{"10.0.0.6", "fd00::6"}},
		{"ref", "CHECK", att("c4"), nil}, // finds nodebridge's allocation
		{"ref", "DEL", att("c4"), nil},   // and frees it
		{"nb", "LOOKUP", att("c4"), nil},
		{"nb", "ADD 10.0.0.5", att("c6"), []string{"10.0.0.5", "fd00::7"}}, // free again
		{"nb", "DEL", att("c5"), []string{"10.0.0.6", "fd00::6"}},
		{"ref", "ADD", att("c7"), []string{"10.0.0.6", "fd00::8"}},
		{"ref", "DEL", att("c2"), nil},
		{"nb", "DEL", att("c2"), nil},
		{"nb", "ADD", att("c8"), []string{"10.0.0.7", "fd00::9"}},
		{"ref", "DEL", att("c6"), nil},
		{"nb", "LOOKUP", att("c6"), nil},
	}
	for i, st := range steps {
		before := indexFiles(t, s)
		got := runStep(t, bin, data, s, p, st.who, st.verb, st.a)
		if !slices.Equal(got, addrs(st.want...)) {
			t.Errorf("step %d: %s %s %v = %v, want %v", i, st.who, st.verb, st.a, got, st.want)
		}
		if after := indexFiles(t, s); st.who == "ref" && !slices.Equal(after, before) {
			t.Errorf("step %d: reference %s changed the index from %v to %v", i, st.verb, before, after)
		}
	}
	got, err := s.Attachments()
	if want := []Attachment{att("c3"), att("c7"), att("c8")}; err != nil || !slices.Equal(got, want) {
		t.Errorf("Attachments at the end = %v, %v; want %v", got, err, want)
	}
	locked(t, s)
	checkIndex(t, s)
}

// runStep runs one step of a hand-over test: a reference plugin call, or
// the Store's ADD ("ADD" or "ADD <requested address>"), DEL, GC (keeping
// only a) or LOOKUP.
func runStep(t *testing.T, bin, data string, s *Store, p *Pool, who, verb string, a Attachment) []netip.Addr {
	t.Helper()
	if who == "ref" {
		return refRun(t, bin, data, verb, a)
	}
	switch verb, req, _ := strings.Cut(verb, " "); verb {
	case "ADD":
		if req != "" {
			return mustAlloc(t, s, p, a, addrs(req)...)
		}
		return mustAlloc(t, s, p, a)
	case "DEL":
		return mustRelease(t, s, a)
	case "GC":
		if _, err := s.GC([]Attachment{a}); err != nil {
			t.Fatal(err)
		}
		return nil
	default:
		return mustLookup(t, s, a)
	}
}

// handOverStep is one step of a hand-over test and the addresses it must give.
type handOverStep struct {
	who, verb string
	a         Attachment
	want      []string
}

// handOver is the set-up of a hand-over test: the reference binary, a data
// directory, a dual-stack pool and the Store on it.
func handOver(t *testing.T) (bin, data string, p *Pool, s *Store) {
	t.Helper()
	bin, data = hostLocal(t), t.TempDir()
	p = mustPool(t, Config{DataDir: data, Ranges: [][]RangeConfig{{{Subnet: "10.0.0.0/24"}}, {{Subnet: "fd00::/64"}}}})
	s, err := Open(data, "net")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return bin, data, p, s
}

// indexFiles lists the index directory with each file's content, or nil
// when there is none yet.
func indexFiles(t *testing.T, s *Store) []string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(s.Dir(), indexDir)); err != nil {
		return nil
	}
	var files []string
	for _, n := range indexNames(t, s) {
		files = append(files, n+"="+readTestFile(t, filepath.Join(s.Dir(), indexDir, n)))
	}
	return files
}

func testReferenceWaitsForLock(t *testing.T, bin, data string, s *Store) {
	if err := lockWithin(t, s, time.Second); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := refCmd(ctx, t, bin, data, "ADD", att("c4"))
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		t.Fatalf("reference ADD finished (%v) while we held the lock", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := s.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("reference ADD after Unlock: %v\n%s", err, out.Bytes())
	}
	if got, want := resultAddrs(t, out.Bytes()), addrs("10.0.0.6", "fd00::6"); !slices.Equal(got, want) {
		t.Errorf("reference ADD after Unlock = %v, want %v", got, want)
	}
}
