// Command tunnel is the data-path part of `make bench`: TCP throughput and
// latency between two nodes on one underlay segment, node to node, pod to
// pod routed host-gw, and pod to pod through the agent's VXLAN devices
// (made by pkg/routes, as the agent makes them), rounds interleaved so
// drift hits every path alike. It prints a table with the ratios and
// writes the figures as JSON.
//
// Throughput: one connection writing 128 KiB buffers for -duration, the
// receiver counting. Latency: one connection, TCP_NODELAY, a byte sent
// and echoed -pings times; p50 and p99 of the round trip. Both run in
// this process, its sockets made inside the netns (no iperf3 needed),
// so the figures include Go's own costs, alike for every path.
//
// It needs root. Everything runs in netns it creates (named
// "nb<pid>-tun-...") and goes on the way out; the root netns is never
// touched, and the report says whether it stayed so.
//
//	tunnel -json _out/bench-tunnel.json
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

type options struct {
	duration time.Duration
	pings    int
	rounds   int
	jsonPath string
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err == nil {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		err = run(ctx, o)
		stop()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tunnel:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("tunnel", flag.ContinueOnError)
	fs.DurationVar(&o.duration, "duration", 2*time.Second, "how long each throughput sample sends")
	fs.IntVar(&o.pings, "pings", 5000, "round trips per latency sample")
	fs.IntVar(&o.rounds, "rounds", 5, "samples per path, the paths taking turns")
	fs.StringVar(&o.jsonPath, "json", "_out/bench-tunnel.json", "where to write the figures as JSON")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.duration <= 0 || o.pings < 100 || o.rounds < 1 {
		return o, errors.New("-duration must be positive, -pings at least 100, -rounds at least 1")
	}
	return o, nil
}

// run builds the two nodes, measures every path, tears down and reports.
func run(ctx context.Context, o options) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("needs root: it creates network namespaces")
	}
	before := testenv.State(testenv.NetnsPrefix())
	t, err := newTopology(ctx)
	if err != nil {
		return err
	}
	r := &report{Time: time.Now(), Setup: setup{Duration: o.duration.String(), Pings: o.pings, Rounds: o.rounds, UnderlayMTU: underlayMTU}}
	err = t.measure(ctx, o, r)
	if cerr := t.close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("clean up: %w", cerr))
	}
	if err != nil {
		return err
	}
	r.RootChanges = testenv.Diff(before, testenv.State(testenv.NetnsPrefix()))
	r.summarise()
	r.print(os.Stdout)
	return r.writeJSON(o.jsonPath)
}

// writeJSON writes the report to path, making its dir.
func (r *report) writeJSON(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("make dir of %s: %w", path, err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	fmt.Printf("figures written to %s\n", path)
	return nil
}
