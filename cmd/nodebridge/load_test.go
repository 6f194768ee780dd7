package main_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// The load: loadFirst pods added by loadWorkers parallel workers, then
// loadChurn of them deleted while loadChurn more are added, then all
// deleted. A /23 holds the peak of loadFirst + loadChurn attachments.
const (
	loadWorkers = 16
	loadFirst   = 200
	loadChurn   = 100
	loadSubnet  = "10.244.0.0/23"
)

// TestLoad runs the load, each call its own process as a node's runtime
// makes them: every call succeeds, no two pods attached at the same time
// ever share an address, after each phase the node holds exactly the
// attached pods' veths and records, and at the end nothing at all. It logs
// the wall time of each phase.
func TestLoad(t *testing.T) {
	t.Parallel()
	start := time.Now()
	f := newFixture(t, loadSubnet)
	pods := f.newPods(loadFirst + loadChurn)
	t.Logf("%d pod netns made in %v", len(pods), time.Since(start))
	ld := &load{f: f, conf: mustJSON(t, f.conf("1.1.0")),
		lg: &ledger{attached: map[pod]string{}, holder: map[string]pod{}, deleting: map[pod]bool{}}}

	var jobs []job
	for _, p := range pods[:loadFirst] {
		jobs = append(jobs, job{"ADD", p})
	}
	ld.run(fmt.Sprintf("%d ADDs", loadFirst), jobs)
	ld.wantAttached(loadFirst)

	jobs = nil
	for i := range loadChurn { // interleaved, so DELs and ADDs run side by side
		jobs = append(jobs, job{"DEL", pods[i]}, job{"ADD", pods[loadFirst+i]})
	}
	ld.run(fmt.Sprintf("%d DELs with %d ADDs", loadChurn, loadChurn), jobs)
	ld.wantAttached(loadFirst)

	jobs = nil
	for _, p := range pods[loadChurn:] {
		jobs = append(jobs, job{"DEL", p})
	}
	ld.run(fmt.Sprintf("%d DELs", len(jobs)), jobs)
	ld.wantAttached(0)
	f.assertClean()
	t.Logf("load done in %v wall time, pod netns included", time.Since(start))
}

// load is the state of TestLoad: its node and network, the config every
// call sends, and the ledger of attachments.
type load struct {
	f    *fixture
	conf []byte
	lg   *ledger
}

// job is one call of the load.
type job struct {
	command string
	p       pod
}

// ledger follows which pod holds which address while the load runs.
type ledger struct {
	mu       sync.Mutex
	attached map[pod]string // pod -> its address, from ADD until DEL returns
	holder   map[string]pod // address -> the attached pod holding it
	deleting map[pod]bool   // pods whose DEL is running: their address may go at any moment
	failures []string
}

// added notes p's address; another attached pod holding it, unless its DEL
// is under way, is a duplicate.
func (lg *ledger) added(p pod, addr string) {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	if other, ok := lg.holder[addr]; ok && !lg.deleting[other] {
		lg.failures = append(lg.failures, fmt.Sprintf("%s given to %s while %s holds it", addr, p.id, other.id))
	}
	lg.attached[p], lg.holder[addr] = addr, p
}

func (lg *ledger) deleteStarts(p pod) {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	lg.deleting[p] = true
}

func (lg *ledger) deleted(p pod) {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	if addr := lg.attached[p]; lg.holder[addr] == p {
		delete(lg.holder, addr)
	}
	delete(lg.attached, p)
	delete(lg.deleting, p)
}

func (lg *ledger) fail(format string, args ...any) {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	lg.failures = append(lg.failures, fmt.Sprintf(format, args...))
}

// run runs jobs on loadWorkers workers, in order of the list, and fails
// the test for every failed call or duplicate address.
func (ld *load) run(what string, jobs []job) {
	ld.f.t.Helper()
	start := time.Now()
	queue := make(chan job)
	var wg sync.WaitGroup
	for range loadWorkers {
		wg.Go(func() {
			for j := range queue {
				ld.call(j)
			}
		})
	}
	for _, j := range jobs {
		queue <- j
	}
	close(queue)
	wg.Wait()
	ld.f.t.Logf("%s on %d workers: %v", what, loadWorkers, time.Since(start))
	for _, msg := range ld.lg.failures {
		ld.f.t.Error(msg)
	}
	ld.lg.failures = nil
}

// call makes one call of the load; it touches no testing.T.
func (ld *load) call(j job) {
	lg := ld.lg
	if j.command == "DEL" {
		lg.deleteStarts(j.p)
	}
	o, err := invoke(ld.f.node, call{Command: j.command, ContainerID: j.p.id, Netns: testenv.Path(j.p.ns),
		IfName: j.p.ifName, Conf: ld.conf})
	switch {
	case err != nil:
		lg.fail("%s %s: %v", j.command, j.p.id, err)
	case o.Code != 0:
		lg.fail("%s %s: %s", j.command, j.p.id, o)
	case j.command == "DEL":
		lg.deleted(j.p)
	default:
		res, err := o.result("1.1.0")
		if err != nil || len(res.IPs) != 1 {
			lg.fail("ADD %s: %v, result %s", j.p.id, err, o.Stdout)
			return
		}
		lg.added(j.p, res.IPs[0].Address.IP.String())
	}
}

// wantAttached checks the node against the ledger: n pods attached, one
// veth and one record each, the records being the ledger's addresses.
func (ld *load) wantAttached(n int) {
	f, lg := ld.f, ld.lg
	f.t.Helper()
	var want []string
	for _, addr := range lg.attached {
		want = append(want, addr)
	}
	slices.Sort(want)
	got := f.allocations()
	slices.Sort(got)
	if len(lg.attached) != n || !slices.Equal(got, want) {
		f.t.Errorf("%d pods attached (want %d), records %v, want the attached pods' %v", len(lg.attached), n, got, want)
	}
	if v := vethNames(f.t, f.node); len(v) != n {
		f.t.Errorf("%d veths in the node, want %d", len(v), n)
	}
}
