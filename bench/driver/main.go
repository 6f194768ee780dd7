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
// The busy rounds (-busy) run the sequential round again in busy nodes: each
// node holds what kube-proxy writes for -busy-services Services, in its
// iptables or its nftables mode, and is rewritten one Service at a time
// every -busy-resync while the ADDs and DELs run, as kube-proxy's partial
// syncs do; each row is compared with its idle round of as many pods.
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
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
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

	busy         []loadShape // kube-proxy loads, one busy round each
	busyServices int
	busyResync   time.Duration
	busyN        int // pods per busy round
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
	busy := fs.String("busy", "iptables,nftables", "busy rounds: kube-proxy load shapes, comma-separated (empty: no busy round)")
	fs.IntVar(&o.busyServices, "busy-services", 3000, "Services in a busy round's kube-proxy load")
	fs.DurationVar(&o.busyResync, "busy-resync", 500*time.Millisecond, "how often a busy round's kube-proxy rewrites one Service")
	fs.IntVar(&o.busyN, "busy-n", 30, "pods per busy round, beside an idle sequential round of as many")
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
	return o, o.parseBusy(*busy)
}

// parseBusy checks the busy rounds' flags, given the list of shapes.
func (o *options) parseBusy(list string) error {
	var errs []error
	for f := range strings.SplitSeq(list, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		sh, err := shapeNamed(f)
		errs = append(errs, err)
		o.busy = append(o.busy, sh)
	}
	if len(o.busy) == 0 {
		return errors.Join(errs...)
	}
	errs = append(errs, checkServices(o.busyServices))
	if o.busyResync <= 0 {
		errs = append(errs, fmt.Errorf("-busy-resync %v: must be above 0", o.busyResync))
	}
	if o.busyN < 1 {
		errs = append(errs, fmt.Errorf("-busy-n %d: must be at least 1", o.busyN))
	}
	return errors.Join(errs...)
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
