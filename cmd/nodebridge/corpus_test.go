package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
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

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// corpusDir holds the hostile-input corpus, one NAME.case file per case.
// The fuzz targets of pkg/bridge seed from the same files.
const corpusDir = "../../testdata/corpus"

// callLimit bounds one plugin call of the corpus: every case must fail
// fast, and a hang must fail its case rather than the whole test binary.
const callLimit = 30 * time.Second

// corpusCase is one file of the corpus: leading "# key: value" lines, then
// stdin verbatim (testdata/corpus/README.md lists the keys and placeholders).
type corpusCase struct {
	name  string
	code  uint     // the CNI error code; 0 for a control case that must succeed
	msgs  []string // each must appear in the error's msg or details
	env   []string // KEY=VALUE set after the default CNI_* variables
	setup []string // "node-link NAME" or "pod-link NAME": a link made first
	stdin []byte
}

// TestCorpus runs every case of the corpus through the binary, each in its
// own node: the call must exit non-zero with one CNI error object of the
// case's code whose message names the culprit, never panic, and leave no
// link, rule or file behind, in the node, the pod or around the dataDir.
func TestCorpus(t *testing.T) {
	t.Parallel()
	cases := loadCorpus(t)
	if len(cases) < 50 {
		t.Fatalf("%d cases in %s: the corpus is missing", len(cases), corpusDir)
	}
	for _, cc := range cases {
		t.Run(cc.name, func(t *testing.T) {
			t.Parallel()
			runCase(t, cc)
		})
	}
}

func loadCorpus(t *testing.T) []corpusCase {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(corpusDir, "*.case"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []corpusCase
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		cc, err := parseCase(strings.TrimSuffix(filepath.Base(p), ".case"), b)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		cases = append(cases, cc)
	}
	return cases
}

// parseCase splits a case file into its header keys and stdin.
func parseCase(name string, b []byte) (corpusCase, error) {
	cc := corpusCase{name: name}
	code := ""
	for len(b) > 0 && b[0] == '#' {
		line, rest, _ := bytes.Cut(b, []byte("\n"))
		b = rest
		key, value, ok := strings.Cut(strings.TrimSpace(strings.TrimPrefix(string(line), "#")), ": ")
		switch {
		case !ok: // a comment
		case key == "code":
			code = value
		case key == "msg":
			cc.msgs = append(cc.msgs, value)
		case key == "env":
			cc.env = append(cc.env, value)
		case key == "setup":
			cc.setup = append(cc.setup, value)
		}
	}
	n, err := strconv.ParseUint(code, 10, 16)
	if err != nil {
		return cc, fmt.Errorf("header: code %q: %w", code, err)
	}
	if n != 0 && len(cc.msgs) == 0 {
		return cc, errors.New("header: no msg fragment for an error case")
	}
	cc.code, cc.stdin = uint(n), b
	return cc, nil
}

// corpusEnv is what a case's placeholders stand for in one node.
type corpusEnv struct {
	f     *fixture
	p     pod
	base  string // temp dir holding the dataDir and the odd files
	subst *strings.Replacer
	made  map[string][]string // netns -> links the case's setup made there
}

// newCorpusEnv makes the node, the pod and, in a fresh temp dir, the
// dataDir, a regular file, a directory and a FIFO for cases to point at.
func newCorpusEnv(t *testing.T) *corpusEnv {
	t.Helper()
	f := newFixture(t, podSubnet)
	e := &corpusEnv{f: f, p: f.newPod(), base: t.TempDir(), made: map[string][]string{}}
	f.dataDir = filepath.Join(e.base, "data")
	for _, dir := range []string{f.dataDir, filepath.Join(e.base, "dir")} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(e.base, "file"), []byte("not a netns\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(e.base, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.subst = strings.NewReplacer(
		"@NAME@", f.name, "@BRIDGE@", f.bridge, "@DATADIR@", f.dataDir,
		"@POD_NETNS@", testenv.Path(e.p.ns), "@NODE_NETNS@", testenv.Path(f.node),
		"@FILE@", filepath.Join(e.base, "file"), "@DIR@", filepath.Join(e.base, "dir"),
		"@FIFO@", filepath.Join(e.base, "fifo"),
		"@PAD@", strings.Repeat("a", 1100*1024),
		"@DEEP@", strings.Repeat("[", 10001)+strings.Repeat("]", 10001),
	)
	return e
}

// runCase runs cc in a fresh node and checks its outcome and residue.
func runCase(t *testing.T, cc corpusCase) {
	e := newCorpusEnv(t)
	for _, s := range cc.setup {
		e.setUp(t, s)
	}
	c := call{Command: "ADD", ContainerID: e.p.id, Netns: testenv.Path(e.p.ns), IfName: e.p.ifName,
		Conf: []byte(e.subst.Replace(string(cc.stdin)))}
	for _, kv := range cc.env {
		c.Env = append(c.Env, e.subst.Replace(kv)) // exec keeps the last of duplicate variables
	}
	before := pathsUnder(t, e.base)
	o, err := invokeWithin(e.f.node, nil, c, callLimit)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(o.Stderr, []byte("panic")) || bytes.Contains(o.Stderr, []byte("goroutine ")) {
		t.Errorf("plugin panicked:\n%s", o.Stderr)
	}
	if cc.code == 0 {
		e.control(t, c, o)
		return
	}
	msgs := make([]string, len(cc.msgs))
	for i, m := range cc.msgs {
		msgs[i] = e.subst.Replace(m)
	}
	wantCNIError(t, o, cc.code, msgs)
	e.wantNoResidue(t)
	if after := pathsUnder(t, e.base); !slices.Equal(after, before) {
		t.Errorf("files around the dataDir changed:\nbefore: %v\nafter:  %v", before, after)
	}
}

// setUp makes what a "setup:" line asks for: a veth pair in the node or
// the pod, one end taking a name the plugin will want (veth, because every
// kernel that runs the plugin has it; dummy is a module some lack).
func (e *corpusEnv) setUp(t *testing.T, line string) {
	t.Helper()
	where, name, _ := strings.Cut(line, " ")
	netns := map[string]string{"node-link": e.f.node, "pod-link": e.p.ns}[where]
	if netns == "" {
		t.Fatalf("setup %q: want node-link or pod-link", line)
	}
	name = e.subst.Replace(name)
	peer := fmt.Sprintf("nbpeer%06x", len(e.made[netns]))
	testenv.Run(t, netns, "ip", "link", "add", name, "type", "veth", "peer", "name", peer)
	e.made[netns] = append(e.made[netns], name, peer)
}

// control checks a case that must succeed, so that the corpus's base config
// is known good and each error case fails for its own fault alone.
func (e *corpusEnv) control(t *testing.T, c call, o outcome) {
	t.Helper()
	mustResult(t, o, "1.1.0")
	c.Command = "DEL"
	mustSucceed(t, e.f.run(c), "DEL of the control case")
	e.f.assertClean()
}

// wantCNIError checks that stdout is exactly one CNI error object with the
// code and a message holding every fragment. It does not stop the test, so
// the residue of a call that broke the contract is reported too.
func wantCNIError(t *testing.T, o outcome, code uint, msgs []string) {
	t.Helper()
	if o.Code == 0 {
		t.Errorf("call succeeded, want CNI error %d: %s", code, o)
		return
	}
	dec := json.NewDecoder(bytes.NewReader(o.Stdout))
	dec.DisallowUnknownFields()
	var te types.Error
	if err := dec.Decode(&te); err != nil || dec.More() {
		t.Errorf("stdout is not one CNI error object (%v): %s", err, o)
		return
	}
	text := te.Msg + " " + te.Details
	if te.Code != code {
		t.Errorf("code %d, want %d: %s", te.Code, code, text)
	}
	for _, m := range msgs {
		if !strings.Contains(text, m) {
			t.Errorf("error %q does not name %q", text, m)
		}
	}
}

// wantNoResidue fails t if the node keeps a link other than lo, the
// network's bridge (shared, never undone) and the setup's links, if the
// pod has more than lo and its setup links, if a setup link is gone, or if
// any nodebridge rule exists.
func (e *corpusEnv) wantNoResidue(t *testing.T) {
	t.Helper()
	allowed := map[string][]string{e.f.node: {"lo", e.f.bridge}, e.p.ns: {"lo"}}
	for netns, ok := range allowed {
		var have []string
		for _, l := range ipAddrs(t, netns) {
			have = append(have, l.IfName)
			if !slices.Contains(ok, l.IfName) && !slices.Contains(e.made[netns], l.IfName) {
				t.Errorf("link %s left in %s", l.IfName, netns)
			}
		}
		for _, name := range e.made[netns] {
			if !slices.Contains(have, name) {
				t.Errorf("link %s, made before the call, is gone from %s", name, netns)
			}
		}
	}
	if r := e.f.nbRules(); len(r) > 0 {
		t.Errorf("nodebridge rules left in the node:\n%s", strings.Join(r, "\n"))
	}
	if rs := testenv.Run(t, e.f.node, "nft", "list", "ruleset"); strings.Contains(rs, "nodebridge") {
		t.Errorf("nftables objects of nodebridge left in the node:\n%s", rs)
	}
}

// pathsUnder lists every path under root with its type and size, without
// opening anything (a FIFO would block a read).
func pathsUnder(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s %s %d", path, info.Mode(), info.Size()))
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return out
}

// invokeWithin is invoke with a deadline, and with wrap (e.g. an nsenter
// argv) in front of `ip netns exec NODE PLUGIN`. A call still running at
// the deadline is killed and reported as an error.
func invokeWithin(node string, wrap []string, c call, limit time.Duration) (outcome, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	argv := append(slices.Clone(wrap), "ip", "netns", "exec", node, pluginBin)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(envWithoutCNI(), "CNI_COMMAND="+c.Command, "CNI_CONTAINERID="+c.ContainerID,
		"CNI_NETNS="+c.Netns, "CNI_IFNAME="+c.IfName, "CNI_ARGS="+c.Args, "CNI_PATH="+filepath.Dir(pluginBin))
	cmd.Env = append(cmd.Env, c.Env...)
	cmd.Stdin = bytes.NewReader(c.Conf)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	o := outcome{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	if ctx.Err() != nil {
		return o, fmt.Errorf("%s still running after %v, killed: %s", c.Command, limit, o)
	}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		o.Code = ee.ExitCode()
	case err != nil:
		return o, fmt.Errorf("exec %s: %w", strings.Join(argv, " "), err)
	}
	return o, nil
}
