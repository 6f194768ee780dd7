// Integration tests for the nodebridge binary. Each test runs the plugin as a
// runtime does (exec'd with CNI_* env inside a node netns the test made) and
// then looks at the kernel state of that node and its pods. testenv.Main
// fails the run if the machine's own network changed.
package main_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// pluginBin is the nodebridge binary TestMain built for this run.
var pluginBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "nodebridge-it-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "make build dir: %v\n", err)
		os.Exit(1)
	}
	code := buildAndRun(m, dir)
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintf(os.Stderr, "remove build dir %s: %v\n", dir, err)
	}
	os.Exit(code)
}

// buildAndRun builds the plugin once, without the race detector (the binary
// is exec'd hundreds of times), then runs the tests under the netns guard.
func buildAndRun(m *testing.M, dir string) int {
	pluginBin = filepath.Join(dir, "nodebridge")
	cmd := exec.Command("go", "build", "-o", pluginBin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build -o %s: %v\n%s", pluginBin, err, out)
		return 1
	}
	return testenv.Main(m)
}

// call is one plugin invocation, with the environment a runtime sets.
type call struct {
	Command     string   // CNI_COMMAND
	ContainerID string   // CNI_CONTAINERID
	Netns       string   // CNI_NETNS, a path
	IfName      string   // CNI_IFNAME
	Args        string   // CNI_ARGS
	Conf        []byte   // stdin
	Env         []string // more variables, e.g. NODEBRIDGE_TRACE=1
}

// outcome is what one invocation printed and how it exited.
type outcome struct {
	Stdout, Stderr []byte
	Code           int
}

func (o outcome) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", o.Code, o.Stdout, o.Stderr)
}

// invoke runs the plugin inside node, as a runtime does. It does not touch a
// testing.T, so goroutines may call it; the error covers an exec failure and
// a broken contract (non-zero exit without an error object, or the reverse).
func invoke(node string, c call) (outcome, error) {
	return invokeTool(node, pluginBin, c)
}

// invokeTool is invoke for any plugin binary, nodebridge or a reference
// plugin; it runs inside the node netns all the same, so no plugin of this
// suite ever runs in the machine's own netns.
func invokeTool(node, bin string, c call) (outcome, error) {
	o, err := execTool(node, bin, c)
	if err != nil {
		return o, err
	}
	if err := o.consistent(); err != nil {
		return o, fmt.Errorf("%s %s in %s: %w\n%s", filepath.Base(bin), c.Command, node, err, o)
	}
	if bin == pluginBin {
		return o, settleDEL(node, c)
	}
	return o, nil
}

// execTool runs bin for c inside node and returns what it printed and its
// exit code; the error is an exec failure only.
func execTool(node, bin string, c call) (outcome, error) {
	cmd := toolCmd(node, bin, c)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	o := outcome{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		o.Code = ee.ExitCode()
	case err != nil:
		return o, fmt.Errorf("exec %s %s in %s: %w", bin, c.Command, node, err)
	}
	return o, nil
}

// settleDEL waits, after a DEL of the plugin, for the reaper of the pair
// it retired, so a test sees the state DEL leads to; a DEL that failed
// after retiring the pair leaves it to the reaper all the same. Any other
// call returns at once.
func settleDEL(node string, c call) error {
	if c.Command != "DEL" {
		return nil
	}
	return waitReaped(node, hostVeth(c.ContainerID, c.IfName))
}

// waitReaped waits, up to reapDeadline, until the node holds no veth a DEL
// retired (a nodebridge host end, down) and left to its reaper, or none of
// those named, so a test sees the state DEL leads to.
// TestDelLeavesVethToReaper tests the wait itself.
func waitReaped(node string, names ...string) error {
	deadline := time.Now().Add(reapDeadline)
	for {
		left, err := retiredVeths(node)
		if len(names) > 0 {
			left = slices.DeleteFunc(left, func(n string) bool { return !slices.Contains(names, n) })
		}
		if err != nil || len(left) == 0 {
			return err
		}
		if time.Now().After(deadline) {
			out, _ := exec.Command("ip", "-n", node, "-d", "link", "show", "type", "veth").CombinedOutput()
			return fmt.Errorf("veths %v still in node %s %v after DEL: no reaper deleted them\n%s", left, node, reapDeadline, out)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// hostVeth is the name nodebridge gives the host end of an attachment.
func hostVeth(containerID, ifName string) string {
	sum := sha256.Sum256([]byte(containerID + "\x00" + ifName))
	return "nb" + hex.EncodeToString(sum[:])[:13]
}

// reapDeadline bounds a reaper's work: a veth deletion waits for an RCU
// barrier, 20-50 ms here, longer on a loaded machine.
const reapDeadline = 10 * time.Second

// retiredVeths lists the node's nodebridge host ends ("nb" + 13 hex) that
// are down.
func retiredVeths(node string) ([]string, error) {
	out, err := exec.Command("ip", "-n", node, "-j", "link", "show", "type", "veth").Output()
	if err != nil {
		return nil, fmt.Errorf("ip -n %s link show: %w", node, err)
	}
	var links []struct {
		IfName string   `json:"ifname"`
		Flags  []string `json:"flags"`
	}
	if err := json.Unmarshal(out, &links); err != nil {
		return nil, fmt.Errorf("decode ip -j link of %s: %w", node, err)
	}
	var down []string
	for _, l := range links {
		if len(l.IfName) == 15 && strings.HasPrefix(l.IfName, "nb") && !slices.Contains(l.Flags, "UP") {
			down = append(down, l.IfName)
		}
	}
	return down, nil
}

// toolCmd is the command that runs bin for c inside node, with the
// environment a runtime sets and the config on stdin.
func toolCmd(node, bin string, c call) *exec.Cmd {
	cmd := exec.Command("ip", "netns", "exec", node, bin)
	cmd.Env = append(envWithoutCNI(),
		"CNI_COMMAND="+c.Command,
		"CNI_CONTAINERID="+c.ContainerID,
		"CNI_NETNS="+c.Netns,
		"CNI_IFNAME="+c.IfName,
		"CNI_ARGS="+c.Args,
		"CNI_PATH="+filepath.Dir(bin),
	)
	cmd.Env = append(cmd.Env, c.Env...)
	cmd.Stdin = bytes.NewReader(c.Conf)
	return cmd
}

// envWithoutCNI is the test's environment less any CNI_* variable, so only
// what a call sets reaches the plugin.
func envWithoutCNI() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CNI_") {
			env = append(env, kv)
		}
	}
	return env
}

// consistent checks the spec's contract: a non-zero exit if and only if
// stdout holds an error object with a non-zero code and a message.
func (o outcome) consistent() error {
	var e types.Error
	decodeErr := json.Unmarshal(o.Stdout, &e)
	isError := decodeErr == nil && e.Code != 0
	switch {
	case o.Code == 0 && isError:
		return fmt.Errorf("exit 0 with an error object on stdout")
	case o.Code != 0 && !isError:
		return fmt.Errorf("exit %d without an error object on stdout", o.Code)
	case isError && e.Msg == "":
		return fmt.Errorf("error object with code %d and no msg", e.Code)
	}
	return nil
}

// result decodes a successful ADD's stdout, printed in specVersion's format,
// into the current result type.
func (o outcome) result(specVersion string) (*current.Result, error) {
	if o.Code != 0 {
		return nil, fmt.Errorf("ADD failed: %s", o)
	}
	r, err := version.NewResult(specVersion, o.Stdout)
	if err != nil {
		return nil, fmt.Errorf("decode %s result %s: %w", specVersion, o.Stdout, err)
	}
	res, err := current.GetResult(r)
	if err != nil {
		return nil, fmt.Errorf("convert %s result to current: %w", specVersion, err)
	}
	return res, nil
}

// mustResult is result for the test goroutine.
func mustResult(t *testing.T, o outcome, specVersion string) *current.Result {
	t.Helper()
	res, err := o.result(specVersion)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// mustError decodes the error object of a call that had to fail.
func mustError(t *testing.T, o outcome) *types.Error {
	t.Helper()
	if o.Code == 0 {
		t.Fatalf("call succeeded, want a CNI error: %s", o)
	}
	var e types.Error
	if err := json.Unmarshal(o.Stdout, &e); err != nil {
		t.Fatalf("decode error object %q: %v", o.Stdout, err)
	}
	return &e
}

// mustSucceed fails t unless the call exited 0.
func mustSucceed(t *testing.T, o outcome, what string) {
	t.Helper()
	if o.Code != 0 {
		t.Fatalf("%s: %s", what, o)
	}
}

// mustJSON marshals v, failing t on error.
func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %#v: %v", v, err)
	}
	return b
}
