package main_test

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// refHostLocal runs the reference host-local v1.9.1 for c, as the reference
// bridge runs its IPAM plugin: the same CNI_* env and network config on
// stdin, of which host-local reads the name and the "ipam" section.
func (f *fixture) refHostLocal(c call) outcome {
	f.t.Helper()
	o, err := invokeTool(f.node, findTool(f.t, "host-local"), c)
	if err != nil {
		f.t.Fatal(err)
	}
	return o
}

// invokeTool is invoke for another plugin binary. The reference host-local
// only touches files, but runs inside the node netns all the same, so no
// plugin of this suite ever runs in the machine's own netns. It does not
// touch a testing.T, so goroutines may call it.
func invokeTool(node, bin string, c call) (outcome, error) {
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
	if err := o.consistent(); err != nil {
		return o, fmt.Errorf("%s %s in %s: %w\n%s", bin, c.Command, node, err, o)
	}
	return o, nil
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

// refAdd allocates for p with the reference host-local and returns its one
// address; args is CNI_ARGS (e.g. "IP=10.244.0.4" to request one).
func (f *fixture) refAdd(p pod, conf map[string]any, args string) string {
	f.t.Helper()
	c := f.callFor("ADD", p, conf)
	c.Args = args
	res := mustResult(f.t, f.refHostLocal(c), "1.1.0")
	if len(res.IPs) == 0 {
		f.t.Fatalf("reference ADD %s: no IPs", p.id)
	}
	return res.IPs[0].Address.IP.String()
}

// refDel releases p's addresses with the reference host-local.
func (f *fixture) refDel(p pod, conf map[string]any) {
	f.t.Helper()
	mustSucceed(f.t, f.refHostLocal(f.callFor("DEL", p, conf)), "reference DEL "+p.id)
}

// owner is the content both plugins write into an allocation file of p.
func (p pod) owner() string { return p.id + "\r\n" + p.ifName }

// netDir is the network's host-local directory, <dataDir>/<network>.
func (f *fixture) netDir() string { return filepath.Join(f.dataDir, f.name) }

// records maps every allocation file of the network, a name that parses as
// an address, to its content. It reads what the reference reads and
// nothing of nodebridge's own bookkeeping; a symlink is reported, never
// followed.
func (f *fixture) records() map[string]string {
	f.t.Helper()
	entries, err := os.ReadDir(f.netDir())
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}
	}
	if err != nil {
		f.t.Fatalf("list %s: %v", f.netDir(), err)
	}
	recs := map[string]string{}
	for _, e := range entries {
		if _, err := netip.ParseAddr(e.Name()); err != nil {
			continue
		}
		path := filepath.Join(f.netDir(), e.Name())
		if !e.Type().IsRegular() {
			target, _ := os.Readlink(path) // empty for anything but a symlink
			recs[e.Name()] = "not a regular file: " + e.Type().String() + " -> " + target
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			f.t.Fatalf("read record %s: %v", path, err)
		}
		recs[e.Name()] = string(b)
	}
	return recs
}

// wantRecords fails the test unless the network's allocation files are
// exactly want (address -> content).
func (f *fixture) wantRecords(when string, want map[string]string) {
	f.t.Helper()
	if got := f.records(); !maps.Equal(got, want) {
		f.t.Errorf("allocation files %s:\n got %s\nwant %s", when, showRecords(got), showRecords(want))
	}
}

// showRecords prints records sorted, line breaks quoted.
func showRecords(recs map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(recs)) {
		parts = append(parts, k+"="+strings.ReplaceAll(recs[k], "\r\n", `\r\n`))
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// assertNoAttachments fails the test if the node keeps a veth or a
// nodebridge rule, or the network an allocation file. Unlike assertClean it
// ignores the store's own bookkeeping (lock, last_reserved_ip.*, index),
// which may stay.
func (f *fixture) assertNoAttachments() {
	f.t.Helper()
	if v := vethNames(f.t, f.node); len(v) > 0 {
		f.t.Errorf("veths left in node %s: %v", f.node, v)
	}
	if r := f.records(); len(r) > 0 {
		f.t.Errorf("allocation files left in %s: %s", f.netDir(), showRecords(r))
	}
	if r := f.nbRules(); len(r) > 0 {
		f.t.Errorf("nodebridge rules left in node %s:\n%s", f.node, strings.Join(r, "\n"))
	}
}

// addrOf returns the first address of a nodebridge ADD for p.
func (f *fixture) addrOf(p pod, conf map[string]any, args string) string {
	f.t.Helper()
	c := f.callFor("ADD", p, conf)
	c.Args = args
	res := mustResult(f.t, f.run(c), "1.1.0")
	if len(res.IPs) == 0 {
		f.t.Fatalf("ADD %s: no IPs", p.id)
	}
	return res.IPs[0].Address.IP.String()
}
