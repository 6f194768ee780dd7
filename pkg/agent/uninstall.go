package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"strings"

	"github.com/nodebridge/nodebridge/pkg/routes"
	"github.com/vishvananda/netlink"
)

// Uninstall removes what the agent put on this host: every proto-78 route,
// the NB-AGENT-FWD chains and their jumps, and the conflist. It needs no API
// server. Pods already running keep their addresses until deleted.
// Of d it uses Log and Netlink.
func Uninstall(ctx context.Context, cfg Config, d Deps) error {
	if err := cfg.Validate(); err != nil { // the network name builds the path removed
		return fmt.Errorf("config: %w", err)
	}
	return uninstall(ctx, &cfg, d.Netlink, runCommand, d.Log)
}

// uninstall is Uninstall on the host reached through h and run.
func uninstall(ctx context.Context, cfg *Config, h *netlink.Handle, run execFunc, log *slog.Logger) error {
	_, _, routesErr := routes.NewSyncer(h, log).Sync(nil)
	var errs []error
	errs = append(errs, routesErr)
	for f := range 2 {
		errs = append(errs, removeChain(ctx, run, f, log))
	}
	err := os.Remove(cfg.confPath())
	switch {
	case err == nil:
		log.Info("conflist removed", "path", cfg.confPath())
	case !errors.Is(err, fs.ErrNotExist):
		errs = append(errs, fmt.Errorf("remove conflist: %w", err))
	}
	return errors.Join(errs...)
}

// removeChain deletes the family's jumps to NB-AGENT-FWD and the chain, in
// one restore; a family without the chain or without iptables is left as is.
// Equivalent to: iptables -D FORWARD -j NB-AGENT-FWD; iptables -F/-X NB-AGENT-FWD
func removeChain(ctx context.Context, run execFunc, f int, log *slog.Logger) error {
	save, restore := tools(f)
	out, err := run(ctx, nil, save, "-t", "filter")
	if errors.Is(err, exec.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s -t filter: %w", save, err)
	}
	var b strings.Builder
	b.WriteString("*filter\n")
	exists := false
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(l, ":"+agentChain+" "):
			exists = true
		case strings.HasPrefix(l, "-A ") && strings.HasSuffix(l, " -j "+agentChain):
			b.WriteString("-D" + strings.TrimPrefix(l, "-A") + "\n")
		}
	}
	if !exists {
		return nil
	}
	b.WriteString("-F " + agentChain + "\n-X " + agentChain + "\nCOMMIT\n")
	if _, err := run(ctx, []byte(b.String()), restore, "-w", "5", "--noflush"); err != nil {
		return fmt.Errorf("%s removing chain %s: %w", restore, agentChain, err)
	}
	log.Info("forward rules removed", "chain", agentChain, "family", familyName(f))
	return nil
}
