package main_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// tinySubnet has one address for pods: .1 is the gateway, .2 the only host.
const tinySubnet = "10.244.0.0/30"

// TestFailedAddLeavesNothing exhausts a /30 and checks that the ADD that
// finds no address undoes everything it made.
func TestFailedAddLeavesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, tinySubnet)
	first, second := f.newPod(), f.newPod()
	f.add(first)
	veths, allocs, rules := vethNames(t, f.node), f.allocations(), f.nbRules()
	if len(allocs) != 1 {
		t.Fatalf("allocations after the first ADD: %v, want one", allocs)
	}

	e := mustError(t, f.run(f.callFor("ADD", second, f.conf("1.1.0"))))
	t.Logf("second ADD in a full /30: code %d: %s", e.Code, e.Msg)

	if got := vethNames(t, f.node); !slices.Equal(got, veths) {
		t.Errorf("veths in node after failed ADD: %v, want %v", got, veths)
	}
	if got := f.allocations(); !slices.Equal(got, allocs) {
		t.Errorf("allocations after failed ADD: %v, want %v", got, allocs)
	}
	if got := f.nbRules(); !slices.Equal(got, rules) {
		t.Errorf("rules after failed ADD (first pod still attached):\n%s\nwant:\n%s",
			strings.Join(got, "\n"), strings.Join(rules, "\n"))
	}
	for _, l := range ipAddrs(t, second.ns) {
		if l.IfName == second.ifName {
			t.Errorf("%s left in pod netns %s after failed ADD", second.ifName, second.ns)
		}
	}
}

// TestErrors checks that a bad request gets a CNI error object with the code
// docs/configuration.md promises and a message naming what is wrong, and leaves
// nothing behind.
func TestErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	plainFile, fifo := filepath.Join(dir, "plain"), filepath.Join(dir, "fifo")
	if err := os.WriteFile(plainFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(fifo, 0o600); err != nil { // opening it for reading must not block ADD
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		edit     func(conf map[string]any, c *call) // changes the request
		wantCode uint
		wantText string // a substring of msg or details
	}{
		{"not JSON", func(_ map[string]any, c *call) { c.Conf = []byte("{") }, 6, ""},
		{"bridge name too long", set("bridge", "nb-bridge-name-too-long"), 7, "bridge"},
		{"bad subnet", setIPAM("subnet", "10.244.0.0/33"), 7, "subnet"},
		{"rangeStart outside subnet", setIPAM("rangeStart", "10.9.0.5"), 7, "rangeStart"},
		{"vlan out of range", set("vlan", 4095), 7, "vlan"},
		{"disableContainerInterface with ipam", set("disableContainerInterface", true), 7, "disableContainerInterface"},
		{"unknown ipMasqBackend", set("ipMasqBackend", "pf"), 7, "ipMasqBackend"},
		{"hairpin with promisc", func(conf map[string]any, _ *call) { conf["hairpinMode"], conf["promiscMode"] = true, true }, 7, "promiscMode"},
		{"CNI_IFNAME with a slash", func(_ map[string]any, c *call) { c.IfName = "eth0/1" }, 4, ""},
		{"CNI_IFNAME too long", func(_ map[string]any, c *call) { c.IfName = "eth0123456789abcdef" }, 4, ""},
		{"missing netns", func(_ map[string]any, c *call) { c.Netns = testenv.Path("nb-missing-netns") }, 8, "nb-missing-netns"},
		{"netns a plain file", func(_ map[string]any, c *call) { c.Netns = plainFile }, 8, plainFile},
		{"netns a FIFO", func(_ map[string]any, c *call) { c.Netns = fifo }, 8, fifo},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, podSubnet)
			p := f.newPod()
			conf := f.conf("1.1.0")
			c := f.callFor("ADD", p, conf)
			c.Conf = nil // an edit sets it only to send broken stdin
			tt.edit(conf, &c)
			if c.Conf == nil {
				c.Conf = mustJSON(t, conf)
			}
			e := mustError(t, f.run(c))
			if e.Code != tt.wantCode {
				t.Errorf("code %d (%s), want %d", e.Code, e.Msg, tt.wantCode)
			}
			if text := e.Msg + " " + e.Details; !strings.Contains(text, tt.wantText) {
				t.Errorf("error %q does not name %q", text, tt.wantText)
			}
			f.assertClean()
		})
	}
}

// set is a TestErrors edit that sets a top-level config field.
func set(field string, value any) func(map[string]any, *call) {
	return func(conf map[string]any, _ *call) { conf[field] = value }
}

// setIPAM is a TestErrors edit that sets a field of the ipam section.
func setIPAM(field string, value any) func(map[string]any, *call) {
	return func(conf map[string]any, _ *call) { conf["ipam"].(map[string]any)[field] = value }
}
