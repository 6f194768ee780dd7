package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// TestMain fails the run if the tests changed the machine's own network.
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func TestIntList(t *testing.T) {
	tests := []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{"100,300", []int{100, 300}, false},
		{" 5 , 7,", []int{5, 7}, false},
		{"", nil, false},
		{"10,x", nil, true},
		{"0", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := intList("-n", tt.in)
			if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
				t.Errorf("intList(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestBenchPid(t *testing.T) {
	tests := []struct {
		name string
		pid  int
		ok   bool
	}{
		{"nb1f-bench-pod-3", 0x1f, true},
		{"nb1f-node-abc", 0, false}, // a test's netns, not the bench's
		{"nbzz-bench-pod-1", 0, false},
		{"tnode", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pid, ok := benchPid(tt.name)
			if pid != tt.pid || ok != tt.ok {
				t.Errorf("benchPid(%q) = %d, %v; want %d, %v", tt.name, pid, ok, tt.pid, tt.ok)
			}
		})
	}
}

func TestNetworkConf(t *testing.T) {
	n := network{Name: "benchnet", Bridge: "cni0", Subnet: netip.MustParsePrefix("10.88.0.0/16")}
	for _, backend := range []string{"", "nftables"} {
		t.Run("backend "+backend, func(t *testing.T) {
			var c struct {
				Type, Bridge                   string
				IsGateway, IPMasq, HairpinMode bool
				IPMasqBackend                  *string
				IPAM                           struct {
					Ranges  [][]struct{ Subnet string }
					DataDir string
				}
			}
			if err := json.Unmarshal(n.conf("bridge", backend, "/tmp/x"), &c); err != nil {
				t.Fatalf("conf is not JSON: %v", err)
			}
			if c.Type != "bridge" || c.Bridge != "cni0" || !c.IsGateway || !c.IPMasq || !c.HairpinMode ||
				c.IPAM.Ranges[0][0].Subnet != "10.88.0.0/16" || c.IPAM.DataDir != "/tmp/x" {
				t.Errorf("conf decodes to %+v", c)
			}
			if backend == "" && c.IPMasqBackend != nil {
				t.Errorf("ipMasqBackend = %q, want it left out", *c.IPMasqBackend)
			}
			if backend != "" && (c.IPMasqBackend == nil || *c.IPMasqBackend != backend) {
				t.Errorf("ipMasqBackend = %v, want %q", c.IPMasqBackend, backend)
			}
		})
	}
	if got := n.podAddr(0).String(); got != "10.88.0.2/16" {
		t.Errorf("podAddr(0) = %s, want 10.88.0.2/16", got)
	}
	if got := n.podAddr(300).String(); got != "10.88.1.46/16" {
		t.Errorf("podAddr(300) = %s, want 10.88.1.46/16", got)
	}
}

// Every round runs both nodebridge rows on the same binary, the nft one
// with ipMasqBackend nftables and its rules counted in nftables.
func TestRoundsPlugins(t *testing.T) {
	o := options{plugin: "/x/nodebridge", tools: "/t", bin: "/b", seq: []int{10, 30}, parPods: 20, workers: 4}
	n := network{Name: "benchnet", Bridge: "cni0", Subnet: netip.MustParsePrefix("10.88.0.0/16")}
	specs, plugins := o.rounds(newPrograms(o, n))
	want := map[string][]string{
		"seq-10": {nameFloorAdd, nameNodebridge, nameNodebridgeNFT, nameReference},
		"seq-30": {nameFloorAdd, nameNodebridge, nameNodebridgeNFT, nameReference},
		"par-20": {nameNodebridge, nameNodebridgeNFT, nameReference},
	}
	if len(specs) != len(want) {
		t.Fatalf("rounds = %+v, want %d", specs, len(want))
	}
	for _, s := range specs {
		var names []string
		for _, p := range plugins[s.Name] {
			names = append(names, p.Name)
			nft := p.Name == nameNodebridgeNFT
			if nft != (p.Rules == rulesNFT) || nft != bytes.Contains(p.Conf("/d"), []byte(`"ipMasqBackend":"nftables"`)) {
				t.Errorf("%s in %s: rules counted in %v, conf %s", p.Name, s.Name, p.Rules, p.Conf("/d"))
			}
			if strings.HasPrefix(p.Name, nameNodebridge) && p.Path != o.plugin {
				t.Errorf("%s runs %s, want %s", p.Name, p.Path, o.plugin)
			}
		}
		if !slices.Equal(names, want[s.Name]) {
			t.Errorf("round %s runs %v, want %v", s.Name, names, want[s.Name])
		}
	}
}

func TestPrefill(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "benchnet")
	if err := prefill(dir, netip.MustParseAddr("10.88.0.1"), 300); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 301 {
		t.Errorf("prefill wrote %d files, want 300 records and last_reserved_ip.0", len(entries))
	}
	for file, want := range map[string]string{
		"10.88.0.2":          "prefill-000000\r\neth0",
		"10.88.1.45":         "prefill-000299\r\neth0",
		"last_reserved_ip.0": "10.88.1.45",
	} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil || string(b) != want {
			t.Errorf("%s holds %q (%v), want %q", file, b, err, want)
		}
	}
}

// sweepTemp removes the temp dir of a bench process that is gone, and
// keeps this process's own and anything not named like a bench dir.
func TestSweepTemp(t *testing.T) {
	root := t.TempDir()
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join(root, fmt.Sprintf(tempPattern, gone.Process.Pid)+"1")
	mine := filepath.Join(root, fmt.Sprintf(tempPattern, os.Getpid())+"2")
	other := filepath.Join(root, "nodebridge-it-3")
	for _, d := range []string{dead, mine, other} {
		if err := os.MkdirAll(filepath.Join(d, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := sweepTemp(root); err != nil {
		t.Fatal(err)
	}
	for d, wantKept := range map[string]bool{dead: false, mine: true, other: true} {
		_, err := os.Stat(d)
		if kept := err == nil; kept != wantKept {
			t.Errorf("%s kept = %v, want %v", d, kept, wantKept)
		}
	}
}
