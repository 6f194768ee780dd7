// Command nodebridge-agent runs on every node of a cluster and routes pods
// across nodes from the Nodes' podCIDRs: it writes the node's nodebridge
// conflist, one route per other Node (proto 78), and the FORWARD accepts
// for the cluster CIDRs. With --uninstall it removes all three and exits.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/nodebridge/nodebridge/pkg/agent"
	"k8s.io/klog/v2"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// run parses the flags and runs the agent (or the uninstall) until SIGTERM
// or SIGINT; it returns the exit code: 0 after a signal, 2 on bad flags.
func run(args []string) int {
	cfg := agent.Defaults()
	fs := flag.NewFlagSet("nodebridge-agent", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	uninstall := fs.Bool("uninstall", false, "remove the agent's routes, rules and conflist from this host, then exit")
	logFormat := fs.String("log-format", "text", `log format on stderr: "text" or "json"`)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	logger, err := newLogger(*logFormat)
	if err != nil {
		fmt.Fprintln(os.Stderr, "nodebridge-agent:", err)
		return 2
	}
	// client-go logs through klog; send it to the same structured sink.
	klog.SetSlogLogger(logger)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if *uninstall {
		err = agent.Uninstall(ctx, cfg, logger)
	} else {
		err = agent.Run(ctx, cfg, logger)
	}
	if err != nil {
		logger.Error("nodebridge-agent", "err", err)
		return 1
	}
	return 0
}

// newLogger logs to stderr in the chosen format.
func newLogger(format string) (*slog.Logger, error) {
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, nil)), nil
	}
	return nil, fmt.Errorf("log-format %q: not \"text\" or \"json\"", format)
}
