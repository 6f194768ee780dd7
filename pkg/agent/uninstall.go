package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"

	"github.com/nodebridge/nodebridge/pkg/routes"
	"github.com/nodebridge/nodebridge/pkg/rules"
	"github.com/vishvananda/netlink"
)

// Uninstall removes what the agent put on this host: every proto-78 route,
// the FORWARD accepts of both backends (NB-AGENT-FWD and its jumps, chain
// inet nodebridge cluster-fwd), and the conflist. It needs no API server.
// Pods already running keep their addresses until deleted.
// Of d it uses Log, Netlink and Rules.
func Uninstall(ctx context.Context, cfg Config, d Deps) error {
	if err := cfg.Validate(); err != nil { // the network name builds the path removed
		return fmt.Errorf("config: %w", err)
	}
	return uninstall(ctx, &cfg, d.Netlink, d.Rules, d.Log)
}

// uninstall is Uninstall on the host reached through h and rb.
func uninstall(ctx context.Context, cfg *Config, h *netlink.Handle, rb rules.ClusterBackend, log *slog.Logger) error {
	_, _, routesErr := routes.NewSyncer(h, nil, log).Sync(nil)
	errs := []error{routesErr}
	ctx, cancel := context.WithTimeout(ctx, rulesTimeout)
	defer cancel()
	if err := rb.DeleteCluster(ctx, rules.Cluster{Name: cfg.NetworkName}); err != nil {
		errs = append(errs, fmt.Errorf("remove FORWARD accepts: %w", err))
	} else {
		log.Info("forward rules removed")
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
