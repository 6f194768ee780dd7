package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// programs are the binaries a run execs.
type programs struct {
	nb, nbNFT, ref, floorAdd plugin // the rounds; nbNFT is nb with ipMasqBackend nftables
	nop                      plugin // floor: a Go binary doing nothing
	hostLocal, ipamOp        plugin // the IPAM section
}

// newPrograms describes every binary with the environment a runtime gives
// it; CNI_PATH lets the reference bridge find host-local.
func newPrograms(o options, n network) programs {
	cniPath := []string{"CNI_PATH=" + o.tools}
	confOf := func(typ, masqBackend string) func(string) []byte {
		return func(dataDir string) []byte { return n.conf(typ, masqBackend, dataDir) }
	}
	return programs{
		nb: plugin{Name: nameNodebridge, Path: o.plugin, Env: cniPath, Conf: confOf("nodebridge", "")},
		nbNFT: plugin{Name: nameNodebridgeNFT, Path: o.plugin, Env: cniPath, Conf: confOf("nodebridge", "nftables"),
			Rules: rulesNFT},
		ref: plugin{Name: nameReference, Path: filepath.Join(o.tools, "bridge"), Env: cniPath, Conf: confOf("bridge", "")},
		floorAdd: plugin{Name: nameFloorAdd, Path: filepath.Join(o.bin, "floor-add"), Env: cniPath, Conf: confOf("floor-add", ""),
			NoDel: true, PodEnv: func(i int) []string {
				return []string{"FLOOR_BRIDGE=" + n.Bridge, "FLOOR_ADDR=" + n.podAddr(i).String(), "FLOOR_GW=" + n.gateway().String()}
			}},
		nop:       plugin{Name: "nop", Path: filepath.Join(o.bin, "nop")},
		hostLocal: plugin{Name: "host-local", Path: filepath.Join(o.tools, "host-local"), Env: cniPath},
		ipamOp:    plugin{Name: "ipam-op", Path: filepath.Join(o.bin, "ipam-op"), Env: cniPath},
	}
}

// rounds lists the rounds and, for each, the plugins in the order they
// run: the sequential rounds (with one of -busy-n pods when there are busy
// rounds and -n lacks it, for them to be compared with), the parallel
// round, then the busy rounds with the sequential rounds' plugins.
func (o options) rounds(p programs) ([]roundSpec, map[string][]plugin) {
	var specs []roundSpec
	plugins := map[string][]plugin{}
	seq := o.seq
	if len(o.busy) > 0 && !slices.Contains(seq, o.busyN) {
		seq = append(slices.Clone(seq), o.busyN)
		slices.Sort(seq)
	}
	for _, n := range seq {
		s := roundSpec{Name: roundName(n, 1), Pods: n, Workers: 1}
		specs, plugins[s.Name] = append(specs, s), []plugin{p.floorAdd, p.nb, p.nbNFT, p.ref}
	}
	if o.parPods > 0 {
		s := roundSpec{Name: roundName(o.parPods, o.workers), Pods: o.parPods, Workers: o.workers}
		specs, plugins[s.Name] = append(specs, s), []plugin{p.nb, p.nbNFT, p.ref}
	}
	for _, s := range o.busySpecs() {
		specs, plugins[s.Name] = append(specs, s), []plugin{p.floorAdd, p.nb, p.nbNFT, p.ref}
	}
	return specs, plugins
}

// idleSpecs are the rounds of specs in an idle node.
func idleSpecs(specs []roundSpec) []roundSpec {
	return slices.DeleteFunc(slices.Clone(specs), func(s roundSpec) bool { return s.Load != nil })
}

// run measures everything, then writes the JSON and prints the report,
// once all it made is gone (so a closed stdout cannot leave netns behind).
func run(o options) error {
	rep, err := measureClean(o)
	if err != nil {
		return err
	}
	if err := rep.writeJSON(o.jsonPath); err != nil {
		return err
	}
	rep.print(os.Stdout)
	return nil
}

// measureClean measures inside netns and a temp dir that are all removed
// before it returns, Ctrl-C included (it stops at the next call), and checks
// that the root netns, the named netns and /var/lib/cni are as they were.
func measureClean(o options) (_ *report, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("needs root: it creates network namespaces")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := sweepStale(o.tmpRoot); err != nil {
		return nil, err
	}
	before := testenv.State(testenv.NetnsPrefix())
	o, uninstall, err := install(o)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, uninstall()) }()
	tmp, err := os.MkdirTemp(o.tmpRoot, fmt.Sprintf(tempPattern, os.Getpid()))
	if err != nil {
		return nil, fmt.Errorf("make temp dir: %w", err)
	}
	b := &bench{ns: newNSSet(), tmp: tmp,
		net: network{Name: "benchnet", Bridge: "cni0", Subnet: netip.MustParsePrefix("10.88.0.0/16")}}
	rep, err := b.measure(ctx, o)
	if err = errors.Join(err, b.ns.delAll(), os.RemoveAll(tmp)); err != nil {
		return nil, err
	}
	rep.RootChanges = testenv.Diff(before, testenv.State(testenv.NetnsPrefix()))
	return rep, nil
}

// measure runs every section and returns the report, bar the root check.
func (b *bench) measure(ctx context.Context, o options) (*report, error) {
	start, cpu := time.Now(), cpuNow()
	progress := func(what string) { fmt.Fprintf(os.Stderr, "bench: %-28s (%s)\n", what, since(start)) }
	p := newPrograms(o, b.net)
	rep := &report{Time: start, Machine: thisMachine(), FloorExecs: o.floorK, IPAMPairs: o.ipamK,
		Network: fmt.Sprintf("%s, bridge %s, isGateway ipMasq hairpinMode, host-local %s, dataDir in a temp dir; node FORWARD policy DROP; "+
			"%s adds ipMasqBackend nftables", b.net.Name, b.net.Bridge, b.net.Subnet, nameNodebridgeNFT)}
	var err error
	rep.Storage = storage{Dir: b.tmp, FS: fsName(b.tmp)}
	rep.Installed = fmt.Sprintf("%s (%s)", o.bin, fsName(o.bin))
	if rep.Storage.CreateStart, err = probeCreate(b.tmp); err != nil {
		return nil, err
	}
	if rep.Versions, err = b.versions(p.nb.Path, p.ref.Path, p.hostLocal.Path); err != nil {
		return nil, err
	}
	rep.Warnings = append(rep.Warnings, versionWarnings(rep.Versions[1:])...)
	progress("floors")
	if rep.Floors, err = b.measureFloors(ctx, p.nop, p.nb, o.floorK); err != nil {
		return nil, err
	}
	specs, plugins := o.rounds(p)
	if err := b.runRounds(ctx, specs, plugins, rep, progress); err != nil {
		return nil, err
	}
	if rep.Storage.CreateEnd, err = probeCreate(b.tmp); err != nil {
		return nil, err
	}
	if len(o.fills) > 0 {
		progress("IPAM scale")
		if rep.IPAM, err = b.ipamScale(ctx, o.fills, o.ipamK, p.hostLocal, p.ipamOp); err != nil {
			return nil, fmt.Errorf("IPAM scale: %w", err)
		}
	}
	progress("done")
	rep.Machine.finish(cpu)
	if w := rep.Machine.busyWarning(); w != "" {
		rep.Warnings = append(rep.Warnings, w)
	}
	rep.Ratios = ratios(rep.Rounds, idleSpecs(specs))
	rep.Targets = evaluate(rep.Rounds, idleSpecs(specs), rep.IPAM)
	if rep.Busy != nil {
		rep.Busy.Ratios = busyRatios(rep.Busy.Rounds, rep.Rounds, specs)
		rep.Targets = append(rep.Targets, busyTargets(rep.Busy.Rounds, rep.Rounds, specs)...)
	}
	return rep, nil
}

// runRounds runs every round of specs, keeping the rows of the idle ones
// in rep.Rounds and those of the busy ones in rep.Busy.
func (b *bench) runRounds(ctx context.Context, specs []roundSpec, plugins map[string][]plugin, rep *report, progress func(string)) error {
	for _, s := range specs {
		progress("round " + s.Name)
		results, err := b.runRound(ctx, s, plugins[s.Name])
		if err != nil {
			return fmt.Errorf("round %s: %w", s.Name, err)
		}
		rows := &rep.Rounds
		if s.Load != nil {
			if rep.Busy == nil {
				rep.Busy = &busyReport{Services: s.Load.services, Resync: ms(s.Load.resync), Pods: s.Pods}
			}
			rep.Busy.Shapes = append(rep.Busy.Shapes, s.Load.shape.Name)
			rows = &rep.Busy.Rounds
		}
		for _, r := range results {
			*rows = append(*rows, rowOf(r))
		}
	}
	return nil
}

// since is the wall time since start, for the progress lines.
func since(start time.Time) string { return time.Since(start).Round(100 * time.Millisecond).String() }
