// Command driver is `make bench`: it times nodebridge against the reference
// bridge + host-local plugins, exec'ing each binary as a runtime does, from a
// thread inside a node netns, with the same config (isGateway, ipMasq,
// hairpinMode, host-local over a /16), and nodebridge a second time as
// nodebridge-nft, with ipMasqBackend nftables added. Per plugin and round
// it runs N sequential ADDs then N DELs, and a parallel round; beside them
// it times the floors: a do-nothing Go binary, nodebridge with no command,
// and floor-add, the least kernel work an ADD needs. A separate section times
// nodebridge's IPAM against host-local on pre-filled dataDirs.
//
// It prints tables, the ratios and whether each of the targets
// holds, and writes the same figures as JSON. Unmet targets do not make it
// fail; a broken set-up does.
//
// Everything runs in netns it creates (names "nb<pid>-bench-...") and a temp
// dir (under /dev/shm, or -datadir-root), all removed on the way out, Ctrl-C
// included; the root netns and /var/lib/cni are never touched, and it checks
// so at the end.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// options are the command line.
type options struct {
	plugin   string // nodebridge binary
	tools    string // dir with the reference bridge and host-local
	bin      string // dir with nop, floor-add and ipam-op
	jsonPath string
	tmpRoot  string // where the temp dir with the dataDirs goes
	seq      []int  // pods per sequential round
	parPods  int
	workers  int
	floorK   int   // execs per floor
	ipamK    int   // ADD+DEL pairs per fill
	fills    []int // allocations before the IPAM pairs
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err == nil {
		err = run(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("driver", flag.ContinueOnError)
	fs.StringVar(&o.plugin, "plugin", "bin/nodebridge", "the nodebridge binary")
	fs.StringVar(&o.tools, "tools", filepath.Join(os.Getenv("HOME"), ".cache/nodebridge/bin"), "dir holding the reference bridge and host-local")
	fs.StringVar(&o.bin, "bin", "_out/bench/bin", "dir holding nop, floor-add and ipam-op")
	fs.StringVar(&o.jsonPath, "json", "_out/bench.json", "where to write the figures as JSON")
	fs.StringVar(&o.tmpRoot, "datadir-root", "/dev/shm", "where the run's temp dir, holding every dataDir, goes: tmpfs by default, so a file create costs the same in every run; "+
		"a disk directory (e.g. /var/tmp) adds that disk's cost, which on ext4 without a journal grows with the files deleted in the last minutes")
	seq := fs.String("n", "100,300", "pods per sequential round, comma-separated")
	fs.IntVar(&o.parPods, "parallel", 100, "pods in the parallel round (0: none)")
	fs.IntVar(&o.workers, "workers", 8, "workers in the parallel round")
	fs.IntVar(&o.floorK, "floor", 200, "execs per floor measurement")
	fs.IntVar(&o.ipamK, "ipam-pairs", 30, "timed IPAM ADD+DEL pairs per fill")
	fills := fs.String("fills", "10,1000,10000", "allocations before the IPAM pairs, comma-separated (empty: no IPAM section)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var err error
	if o.seq, err = intList("-n", *seq); err != nil {
		return o, err
	}
	if o.fills, err = intList("-fills", *fills); err != nil {
		return o, err
	}
	if o.workers < 1 || o.floorK < 1 || o.ipamK < 1 {
		return o, fmt.Errorf("-workers, -floor and -ipam-pairs must be at least 1")
	}
	return o, nil
}

// intList parses "100,300"; the empty string is an empty list.
func intList(flagName, s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s %q: %q is not a positive number", flagName, s, f)
		}
		out = append(out, n)
	}
	return out, nil
}
