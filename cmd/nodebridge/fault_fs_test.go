package main_test

import (
	"errors"
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

	"github.com/containernetworking/cni/pkg/types"
)

// TestFaultDataDirFull fills the filesystem of the dataDir while a pod is
// attached. The next ADD fails with a message naming the store and the
// full disk, and leaves nothing: no veth, no record, no temp file, the
// rules as the live pod needs them. The live pod still passes CHECK, and
// DEL of both pods succeeds on the full disk and frees everything.
func TestFaultDataDirFull(t *testing.T) {
	t.Parallel()
	f := newFixture(t, podSubnet)
	live, late := f.newPod(), f.newPod()
	m := newTmpfsNS(t, f, "size=64k")
	o := m.run(f.callFor("ADD", live, f.conf("1.1.0")))
	addr := mustResult(t, o, "1.1.0").IPs[0].Address.IP.String()
	veths, rules := vethNames(t, f.node), f.nbRules()
	m.fill()

	e := mustError(t, m.run(f.callFor("ADD", late, f.conf("1.1.0"))))
	t.Logf("ADD with the dataDir full: code %d: %s", e.Code, e.Msg)
	for _, want := range []string{f.netDir(), "no space left on device"} {
		if !strings.Contains(e.Msg, want) {
			t.Errorf("error %q does not name %q", e.Msg, want)
		}
	}
	m.wantState("after the failed ADD", []string{addr}, veths, rules)
	wantOnlyLoopback(t, late)
	mustSucceed(t, m.run(f.callFor("CHECK", live, checkConf(f, o.Stdout))), "CHECK of the live pod on a full disk")

	mustSucceed(t, m.run(f.callFor("DEL", live, f.conf("1.1.0"))), "DEL on a full disk")
	mustSucceed(t, m.run(f.callFor("DEL", late, f.conf("1.1.0"))), "DEL of the pod whose ADD failed")
	m.wantState("after DEL of both pods", nil, nil, nil)
}

// TestFaultDataDirReadOnly puts the dataDir on a read-only filesystem: an
// ADD fails naming the store and the read-only filesystem and leaves
// nothing; STATUS answers 50; DEL cannot free the address and says so,
// though it removes the veth; once writable again, DEL frees everything.
func TestFaultDataDirReadOnly(t *testing.T) {
	t.Parallel()
	f := newFixture(t, podSubnet)
	a, b := f.newPod(), f.newPod()
	m := newTmpfsNS(t, f, "ro,size=1m")
	m.wantReadOnly(m.run(f.callFor("ADD", a, f.conf("1.1.0"))), "ADD with the network directory not yet made")
	m.wantState("after an ADD on a read-only dataDir", nil, nil, nil)
	wantOnlyLoopback(t, a)

	m.remount("rw")
	addr := mustResult(t, m.run(f.callFor("ADD", a, f.conf("1.1.0"))), "1.1.0").IPs[0].Address.IP.String()
	veths, rules := vethNames(t, f.node), f.nbRules()
	m.remount("ro")
	m.wantReadOnly(m.run(f.callFor("ADD", b, f.conf("1.1.0"))), "ADD")
	m.wantState("after a failed ADD with a pod attached", []string{addr}, veths, rules)
	status := call{Command: "STATUS", Conf: mustJSON(t, f.conf("1.1.0"))}
	if e := mustError(t, m.run(status)); e.Code != types.ErrPluginNotAvailable {
		t.Errorf("STATUS on a read-only dataDir: code %d (%s), want 50", e.Code, e.Msg)
	}
	m.wantReadOnly(m.run(f.callFor("DEL", a, f.conf("1.1.0"))), "DEL")
	m.wantState("after a DEL that could not free the address", []string{addr}, nil, rules)

	m.remount("rw")
	mustSucceed(t, m.run(f.callFor("DEL", a, f.conf("1.1.0"))), "DEL once writable")
	mustSucceed(t, m.run(f.callFor("DEL", b, f.conf("1.1.0"))), "DEL of the pod whose ADD failed")
	m.wantState("after DEL of both pods", nil, nil, nil)
}

// tmpfsNS is a mount namespace of its own, kept alive by a sleeping
// process, where a small tmpfs covers the fixture's dataDir. Plugin calls
// made through it see the tmpfs; the rest of the machine never does (the
// namespace is a slave: mounts come in, none go out), and the mount goes
// with the process.
type tmpfsNS struct {
	t   *testing.T
	f   *fixture
	pid string
}

// newTmpfsNS starts the holder and mounts a tmpfs with opts on f.dataDir
// inside it.
func newTmpfsNS(t *testing.T, f *fixture, opts string) *tmpfsNS {
	t.Helper()
	holder := exec.Command("unshare", "--mount", "--propagation", "slave", "sleep", "3600")
	if err := holder.Start(); err != nil {
		t.Fatalf("start mount namespace holder: %v", err)
	}
	t.Cleanup(func() {
		holder.Process.Kill() // the namespace, and the tmpfs, go with it
		holder.Wait()
	})
	m := &tmpfsNS{t: t, f: f, pid: strconv.Itoa(holder.Process.Pid)}
	m.awaitExec()
	m.nsenter("mount", "-t", "tmpfs", "-o", opts, "nodebridge-test", f.dataDir)
	var in, out syscall.Stat_t
	if err := errors.Join(syscall.Stat(m.path(f.dataDir), &in), syscall.Stat(f.dataDir, &out)); err != nil {
		t.Fatal(err)
	}
	if in.Dev == out.Dev {
		t.Fatalf("tmpfs on %s not seen inside the mount namespace", f.dataDir)
	}
	return m
}

// awaitExec waits until the holder runs sleep: unshare has then made its
// namespace and set its propagation, so nothing mounted in it leaks out.
func (m *tmpfsNS) awaitExec() {
	m.t.Helper()
	self, _ := os.Readlink("/proc/self/ns/mnt") // ours: always readable
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); <-tick.C {
		ns, _ := os.Readlink("/proc/" + m.pid + "/ns/mnt") // "" until the process exists
		comm, _ := os.ReadFile("/proc/" + m.pid + "/comm") // idem
		if ns != "" && ns != self && strings.TrimSpace(string(comm)) == "sleep" {
			return
		}
	}
	m.t.Fatalf("unshare (pid %s) never ran sleep in a mount namespace of its own", m.pid)
}

func (m *tmpfsNS) nsenter(argv ...string) {
	m.t.Helper()
	argv = append([]string{"nsenter", "-t", m.pid, "-m", "--"}, argv...)
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		m.t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
}

func (m *tmpfsNS) remount(opts string) {
	m.t.Helper()
	m.nsenter("mount", "-o", "remount,"+opts, m.f.dataDir)
}

// path is where the test reads p as the namespace sees it.
func (m *tmpfsNS) path(p string) string { return "/proc/" + m.pid + "/root" + p }

// run invokes the plugin in the fixture's node from inside the namespace.
func (m *tmpfsNS) run(c call) outcome {
	m.t.Helper()
	o, err := invokeWithin(m.f.node, []string{"nsenter", "-t", m.pid, "-m", "--"}, c, callLimit)
	if err == nil {
		err = o.consistent()
	}
	if err == nil {
		err = settleDEL(m.f.node, c)
	}
	if err != nil {
		m.t.Fatal(err)
	}
	return o
}

// fill writes zeros to the tmpfs until it has no block left.
func (m *tmpfsNS) fill() {
	m.t.Helper()
	fill, err := os.Create(m.path(filepath.Join(m.f.dataDir, "fill")))
	if err != nil {
		m.t.Fatal(err)
	}
	defer fill.Close() // written to a tmpfs: nothing to flush
	for err == nil {
		_, err = fill.Write(make([]byte, 4096))
	}
	var fs syscall.Statfs_t
	if !errors.Is(err, syscall.ENOSPC) || syscall.Statfs(m.path(m.f.dataDir), &fs) != nil || fs.Bavail != 0 {
		m.t.Fatalf("fill the tmpfs: %v, %d blocks still free", err, fs.Bavail)
	}
}

// wantReadOnly checks a call that failed on the read-only dataDir.
func (m *tmpfsNS) wantReadOnly(o outcome, what string) {
	m.t.Helper()
	e := mustError(m.t, o)
	m.t.Logf("%s on a read-only dataDir: code %d: %s", what, e.Code, e.Msg)
	for _, want := range []string{m.f.netDir(), "read-only file system"} {
		if !strings.Contains(e.Msg, want) {
			m.t.Errorf("%s: error %q does not name %q", what, e.Msg, want)
		}
	}
}

// wantState checks the records and temp files in the tmpfs, the node's
// veths and the node's rules.
func (m *tmpfsNS) wantState(when string, records, veths, rules []string) {
	m.t.Helper()
	entries, err := os.ReadDir(m.path(m.f.netDir()))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		m.t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		if _, err := netip.ParseAddr(e.Name()); err == nil || strings.HasPrefix(e.Name(), ".tmp-") {
			got = append(got, e.Name())
		}
	}
	if !slices.Equal(got, records) {
		m.t.Errorf("%s: records and temp files %v, want %v", when, got, records)
	}
	if v := vethNames(m.t, m.f.node); !slices.Equal(v, veths) {
		m.t.Errorf("%s: veths in the node %v, want %v", when, v, veths)
	}
	if r := m.f.nbRules(); !slices.Equal(r, rules) {
		m.t.Errorf("%s: rules\n%s\nwant:\n%s", when, strings.Join(r, "\n"), strings.Join(rules, "\n"))
	}
}

// wantOnlyLoopback fails t if p's netns has a link other than lo.
func wantOnlyLoopback(t *testing.T, p pod) {
	t.Helper()
	for _, l := range ipAddrs(t, p.ns) {
		if l.IfName != "lo" {
			t.Errorf("%s left in pod netns %s", l.IfName, p.ns)
		}
	}
}
