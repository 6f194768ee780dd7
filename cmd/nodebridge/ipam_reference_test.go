package main_test

import (
	"errors"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// refHostLocal runs the reference host-local v1.9.1 for c, as the reference
// bridge runs its IPAM plugin: the same CNI_* env and network config on
// stdin, of which host-local reads the name and the "ipam" section.
func (f *fixture) refHostLocal(c call) outcome {
	f.t.Helper()
	o, err := invokeTool(f.node, testenv.Tool(f.t, "host-local"), c)
	if err != nil {
		f.t.Fatal(err)
	}
	return o
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
