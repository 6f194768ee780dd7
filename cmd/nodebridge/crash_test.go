package main_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// Crash rounds: crashWorkers nodes, each with its own network, run
// firstAddRounds then crashRounds rounds at once. NODEBRIDGE_CRASH_SEED
// replays a run's choices and delays (not the machine's timing).
const (
	crashWorkers   = 4
	firstAddRounds = 5
	crashRounds    = 50
)

// TestCrashSafety SIGKILLs real calls at random instants spread over their
// duration: a network's first ADD and last DEL (firstAddRounds), then ADDs
// each sometimes followed by a DEL of the same pod (crashRounds). However
// the store was left, DEL of every pod and a GC must then free everything:
// no veth, no allocation, no rule, no temp file; and the store still works.
// Every record found before the cleanup must be whole: a torn write would
// show as an empty or partial owner.
func TestCrashSafety(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("NODEBRIDGE_CRASH_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("NODEBRIDGE_CRASH_SEED %q: %v", s, err)
		}
	}
	t.Logf("seed %d (NODEBRIDGE_CRASH_SEED replays its delays)", seed)
	for w := range crashWorkers {
		t.Run(fmt.Sprintf("node%d", w), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			f := newFixture(t, podSubnet)
			pods := f.firstAddRounds(rng)
			pods = append(pods, f.crashRounds(rng)...)
			f.cleanUpAfterCrashes(pods)
			f.storeStillWorks()
		})
	}
}

// crashRounds runs the rounds and returns every pod they touched.
func (f *fixture) crashRounds(rng *rand.Rand) []pod {
	t := f.t
	anchor := f.newPod()
	f.add(anchor)
	noop := func() {}
	sp := newSpans(f, noop)
	pods := []pod{anchor}
	var adds, dels killCount
	for i := range crashRounds {
		if i%5 == 4 {
			sp.time(f, noop)
		}
		p := f.newPod()
		pods = append(pods, p)
		adds.note(f.killAfter(f.callFor("ADD", p, f.conf("1.1.0")), randDelay(rng, sp.add())))
		if rng.IntN(2) == 0 {
			dels.note(f.killAfter(f.callFor("DEL", p, f.conf("1.1.0")), randDelay(rng, sp.del())))
		}
	}
	t.Logf("ADDs: %d killed, %d completed; DELs: %d killed, %d completed; ADD took %v, DEL %v lately",
		adds.killed, adds.completed, dels.killed, dels.completed, sp.add(), sp.del())
	// Delays span 1.2x a call, so about 5 in 6 calls die: far fewer means
	// the kills land after the calls and the test proves nothing.
	if adds.killed < crashRounds/4 {
		t.Errorf("only %d of %d ADDs were killed before they finished", adds.killed, crashRounds)
	}
	f.wantWholeRecords(pods)
	return pods
}

// firstAddRounds kills the network's first ADD, which makes the bridge and
// installs the rules, at a random instant; a normal ADD of a second pod
// must then cope with whatever it left. The DEL of the network's last
// attachment, which removes the rules, is killed next. Normal DELs of both
// pods must then leave nothing. The plugin never removes a bridge, so the
// test does, for the next round's ADD to make it again.
func (f *fixture) firstAddRounds(rng *rand.Rand) []pod {
	sp := newSpans(f, f.deleteBridge)
	var pods []pod
	var adds, dels killCount
	for range firstAddRounds {
		p, q := f.newPod(), f.newPod()
		pods = append(pods, p, q)
		adds.note(f.killAfter(f.callFor("ADD", p, f.conf("1.1.0")), randDelay(rng, sp.add())))
		f.add(q)
		f.del(p)
		dels.note(f.killAfter(f.callFor("DEL", q, f.conf("1.1.0")), randDelay(rng, sp.del())))
		f.del(q)
		f.assertNoAttachments()
		f.deleteBridge()
		sp.time(f, f.deleteBridge)
	}
	f.t.Logf("first ADDs: %d killed, %d completed; last DELs: %d killed, %d completed; first ADD took %v, last DEL %v lately",
		adds.killed, adds.completed, dels.killed, dels.completed, sp.add(), sp.del())
	return pods
}

// deleteBridge removes the network's bridge from the node.
// Equivalent to: ip link del BRIDGE
func (f *fixture) deleteBridge() {
	f.t.Helper()
	testenv.Run(f.t, f.node, "ip", "link", "del", f.bridge)
}

// spans is how long ADD and DEL take now: the median of the last three
// timed cycles of a probe pod. Timing again as the rounds go keeps the kills
// spread over a call, however the machine's load changes. A network's
// first ADD and last DEL also install and remove its rules, and take about
// twice as long as the others.
type spans struct{ adds, dels []time.Duration }

// newSpans times three cycles in the network as it is; after runs after each.
func newSpans(f *fixture, after func()) *spans {
	sp := &spans{}
	for range 3 {
		sp.time(f, after)
	}
	return sp
}

// time runs one ADD and DEL of a fresh probe pod and notes how long each
// took; after runs after the cycle.
func (sp *spans) time(f *fixture, after func()) {
	p := f.newPod()
	start := time.Now()
	f.add(p)
	sp.adds = append(sp.adds, time.Since(start))
	start = time.Now()
	f.del(p)
	sp.dels = append(sp.dels, time.Since(start))
	after()
}

func (sp *spans) add() time.Duration { return recentMedian(sp.adds) }
func (sp *spans) del() time.Duration { return recentMedian(sp.dels) }

func recentMedian(ds []time.Duration) time.Duration {
	recent := slices.Clone(ds[max(0, len(ds)-3):])
	slices.Sort(recent)
	return recent[len(recent)/2]
}

func randDelay(rng *rand.Rand, span time.Duration) time.Duration {
	return time.Duration(rng.Int64N(int64(span) * 6 / 5))
}

// killCount counts the calls a kill interrupted and those that finished first.
type killCount struct{ killed, completed int }

func (k *killCount) note(killed bool) {
	if killed {
		k.killed++
	} else {
		k.completed++
	}
}

// killAfter starts the plugin for c in the node and, after delay, SIGKILLs
// its process group: `ip netns exec` execs the plugin in place, so that is
// the plugin and anything it forked (iptables-restore). It reports whether
// the kill interrupted the call; a call that finished first must have
// succeeded, as its pod is new or still attached.
func (f *fixture) killAfter(c call, delay time.Duration) (killed bool) {
	f.t.Helper()
	cmd := toolCmd(f.node, pluginBin, c)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		f.t.Fatalf("start %s %s: %v", pluginBin, c.Command, err)
	}
	time.Sleep(delay)
	// Until Wait reaps it the process exists, as a zombie if it has
	// exited, so the group id cannot have been reused: ESRCH is impossible.
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
		f.t.Fatalf("kill process group %d: %v", cmd.Process.Pid, err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return true
		}
	}
	o := outcome{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), Code: cmd.ProcessState.ExitCode()}
	if err := o.consistent(); err != nil || o.Code != 0 {
		f.t.Errorf("%s %s, not killed, failed: %v\n%s", c.Command, c.ContainerID, err, o)
	}
	return false
}

// wantWholeRecords checks what the kills left: every allocation file holds
// the whole owner of one of pods, and every last_reserved_ip file a whole
// address of the subnet.
func (f *fixture) wantWholeRecords(pods []pod) {
	f.t.Helper()
	owners := map[string]bool{}
	for _, p := range pods {
		owners[p.owner()] = true
	}
	recs := f.records()
	for addr, owner := range recs {
		if !owners[owner] {
			f.t.Errorf("record %s holds %q: not one of the pods' owners", addr, owner)
		}
	}
	subnet := netip.MustParsePrefix(f.subnet)
	names, _ := filepath.Glob(filepath.Join(f.netDir(), "last_reserved_ip.*")) // only ErrBadPattern
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.t.Fatal(err)
		}
		if a, err := netip.ParseAddr(string(b)); err != nil || !subnet.Contains(a) {
			f.t.Errorf("%s holds %q: not an address of %s", filepath.Base(n), b, subnet)
		}
	}
	f.t.Logf("after the kills: %d records, %d last_reserved_ip files", len(recs), len(names))
}

// cleanUpAfterCrashes DELs every pod, which alone must free every
// allocation, then GCs with no valid attachment and checks nothing is left.
func (f *fixture) cleanUpAfterCrashes(pods []pod) {
	t := f.t
	for _, p := range pods {
		f.del(p)
	}
	if recs := f.records(); len(recs) > 0 {
		t.Errorf("allocations DEL of every pod did not free: %s", showRecords(recs))
	}
	t.Logf("before GC: %d temp files of killed writers", len(f.tempFiles()))
	f.gc(f.conf("1.1.0"))
	f.assertNoAttachments()
	for _, p := range pods {
		for _, l := range ipAddrs(t, p.ns) {
			if l.IfName != "lo" {
				t.Errorf("%s left in pod netns %s", l.IfName, p.ns)
			}
		}
	}
	f.wantOnlyBookkeeping()
}

// wantOnlyBookkeeping fails the test unless the network directory of a
// network with no attachment holds only what the plugins keep for good:
//
//   - lock: the file both plugins flock; empty.
//   - last_reserved_ip.<set>: where round-robin resumes, shared with the
//     reference; checked whole by wantWholeRecords.
//   - .nodebridge-note-rules: the record pkg/bridge keeps beside the
//     allocations of when the rules were last verified (verified.go).
//   - .nodebridge-index/: nodebridge's attachment index (pkg/ipam index.go;
//     its freshness lives in directory mtimes, stamp.go), a real directory
//     holding one "a-<sha256>" entry per attachment, so none once no
//     attachment is left.
//
// Anything else is garbage: a record, or a ".tmp-*" file of a killed writer,
// which GC must have swept.
func (f *fixture) wantOnlyBookkeeping() {
	f.t.Helper()
	entries, err := os.ReadDir(f.netDir())
	if err != nil {
		f.t.Fatal(err)
	}
	for _, e := range entries {
		name, regular := e.Name(), e.Type().IsRegular()
		switch {
		case name == "lock" && regular:
		case strings.HasPrefix(name, "last_reserved_ip.") && regular:
		case name == ".nodebridge-note-rules" && regular:
		case name == indexDirName && e.IsDir():
			f.wantEmptyDir(filepath.Join(f.netDir(), name))
		default:
			f.t.Errorf("%s in %s: not the store's bookkeeping (%v)", name, f.netDir(), e.Type())
		}
	}
}

// indexDirName is nodebridge's index directory in a network directory.
const indexDirName = ".nodebridge-index"

func (f *fixture) wantEmptyDir(dir string) {
	f.t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, e := range entries {
		f.t.Errorf("%s in %s: no attachment is left (%v)", e.Name(), dir, e.Type())
	}
}

// tempFiles lists the ".tmp-*" files of killed writers in the network
// directory and its index, which only GC sweeps.
func (f *fixture) tempFiles() []string {
	f.t.Helper()
	var temps []string
	for _, pattern := range []string{".tmp-*", filepath.Join(indexDirName, ".tmp-*")} {
		m, _ := filepath.Glob(filepath.Join(f.netDir(), pattern)) // only ErrBadPattern
		temps = append(temps, m...)
	}
	return temps
}

// storeStillWorks ADDs a new pod after all the crashes and cleanup: it must
// get a host address of the subnet other than the gateway, the only record, and DEL must leave
// the store as clean as before.
func (f *fixture) storeStillWorks() {
	t := f.t
	p := f.newPod()
	res, _ := f.add(p)
	addr := f.checkResult(res, p)
	if subnet := netip.MustParsePrefix(f.subnet); addr == subnet.Addr().Next() || !subnet.Contains(addr.Next()) {
		t.Errorf("fresh ADD got %s: the gateway or the broadcast address", addr)
	}
	f.wantRecords("after a fresh ADD", map[string]string{addr.String(): p.owner()})
	f.del(p)
	f.assertNoAttachments()
	f.wantOnlyBookkeeping()
}
