// Command nodebridge-agent runs on every node of a cluster and routes pods
// across nodes from the Nodes' podCIDRs: it writes the node's nodebridge
// conflist, one route per other Node (proto 78), and the FORWARD accepts
// for the cluster CIDRs, in the rules backend the plugin uses. With --uninstall it removes all three and exits.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nodebridge/nodebridge/pkg/agent"
	"github.com/nodebridge/nodebridge/pkg/rtnl"
	"github.com/nodebridge/nodebridge/pkg/rules"
	"github.com/vishvananda/netlink"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/connrotation"
	"k8s.io/klog/v2"
)

// buildVersion is stamped by the Makefile with -ldflags "-X main.buildVersion=...".
var buildVersion = "dev"

func main() {
	os.Exit(run(os.Args[1:]))
}

// run parses the flags and runs the agent (or the uninstall) until SIGTERM
// or SIGINT; it returns the exit code: 0 after a signal, -h or --version,
// 2 on bad flags.
func run(args []string) int {
	o, err := parseFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	if o.version {
		fmt.Println("nodebridge-agent " + buildVersion)
		return 0
	}
	logger, err := newLogger(o.logFormat, o.logLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "nodebridge-agent:", err)
		return 2
	}
	// client-go logs through klog; send it to the same structured sink.
	klog.SetSlogLogger(logger)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := start(ctx, o, logger); err != nil {
		logger.Error("nodebridge-agent", "err", err)
		return 1
	}
	return 0
}

// start checks the config before it reaches the host or the API server,
// builds the agent's dependencies and runs the agent, or the uninstall.
func start(ctx context.Context, o options, logger *slog.Logger) error {
	if err := o.cfg.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	h, err := netlink.NewHandle()
	if err != nil {
		return fmt.Errorf("open netlink handle: %w", err)
	}
	defer h.Close()
	rt, err := rtnl.Open()
	if err != nil {
		return err
	}
	defer rt.Close()
	d := agent.Deps{Log: logger, Netlink: h, Rtnl: rt, Metrics: new(agent.Metrics), Version: buildVersion}
	// The plugin's choice of backend, by the plugin's rule, with iptables in
	// the host's mode when the image has both variants.
	mode, why := rules.DetectIPTablesMode()
	logger.Info(fmt.Sprintf("iptables mode %s, because %s", mode.Effective(), why))
	d.Metrics.SetIPTablesMode(mode.Effective())
	if d.Rules, err = rules.SelectCluster(o.cfg.IPMasqBackend, mode, rulesLogf(logger)); err != nil {
		return err
	}
	d.Policy = rules.NewNFTables(rulesLogf(logger))
	if o.uninstall {
		if err := agent.Uninstall(ctx, o.cfg, d); err != nil || !o.hold {
			return err
		}
		return agent.HoldUninstalled(ctx, o.cfg, logger)
	}
	if d.Client, d.Reconnect, err = newClient(o.kubeconfig, d.Metrics, logger); err != nil {
		return err
	}
	return agent.Run(ctx, o.cfg, d)
}

// newClient builds the API client; its transport counts requests into m.
// Its connections go through a dialer that can close them all (the
// returned func): after the node's address changed, a watch on a
// connection from the old address would hear nothing until HTTP/2's health
// check gives up on it, most of a minute later.
func newClient(kubeconfig string, m *agent.Metrics, logger *slog.Logger) (kubernetes.Interface, func(), error) {
	rc, err := restConfig(kubeconfig)
	if err != nil {
		return nil, nil, err
	}
	rc.Wrap(m.WrapTransport(logger))
	dialer := connrotation.NewDialer((&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext)
	rc.Dial = dialer.DialContext
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, nil, fmt.Errorf("create Kubernetes client: %w", err)
	}
	return client, dialer.CloseAll, nil
}

// rulesLogf sends the rules layer's diagnostics to logger.
func rulesLogf(logger *slog.Logger) func(format string, args ...any) {
	return func(format string, args ...any) {
		logger.Info(fmt.Sprintf(format, args...), "component", "rules")
	}
}

// newLogger logs to stderr in the chosen format, from the chosen level up.
func newLogger(format, level string) (*slog.Logger, error) {
	lv, ok := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo,
		"warn": slog.LevelWarn, "error": slog.LevelError}[level]
	if !ok {
		return nil, fmt.Errorf("log-level %q: not \"debug\", \"info\", \"warn\" or \"error\"", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("log-format %q: not \"text\" or \"json\"", format)
}
