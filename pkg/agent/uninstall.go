package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"

	"github.com/nodebridge/nodebridge/pkg/routes"
	"github.com/nodebridge/nodebridge/pkg/rules"
	"github.com/vishvananda/netlink"
)

// Uninstall removes what the agent put on this host: every proto-78 route,
// the FORWARD accepts of both backends (NB-AGENT-FWD and its jumps, chain
// inet nodebridge cluster-fwd), and the conflist; and the plugin's bridge
// once no pod is attached to it. It needs no API server. Pods already
// running keep their addresses, and the bridge, until deleted.
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
	errs = append(errs, removeBridge(h, cfg.Bridge, log))
	return errors.Join(errs...)
}

// removeBridge deletes the plugin's bridge when nothing is attached to it:
// the plugin never deletes it, since another pod may come at any time.
// A bridge with ports (pods still running) stays, said in the log, as does
// a link of that name that is not a bridge: not the plugin's.
func removeBridge(h *netlink.Handle, name string, log *slog.Logger) error {
	br, err := h.LinkByName(name)
	if errors.As(err, new(netlink.LinkNotFoundError)) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("find bridge %s: %w", name, err)
	}
	if br.Type() != "bridge" {
		log.Warn("link kept: not a bridge", "link", name, "type", br.Type())
		return nil
	}
	links, err := h.LinkList()
	if err != nil {
		return fmt.Errorf("list links for the ports of bridge %s: %w", name, err)
	}
	var ports []string
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index {
			ports = append(ports, l.Attrs().Name)
		}
	}
	if len(ports) > 0 {
		log.Warn("bridge kept: pods still attached; delete them, then the bridge", "bridge", name, "ports", ports)
		return nil
	}
	if err := h.LinkDel(br); err != nil && !errors.As(err, new(netlink.LinkNotFoundError)) {
		return fmt.Errorf("delete bridge %s: %w", name, err)
	}
	log.Info("bridge removed", "bridge", name)
	return nil
}

// HoldUninstalled serves /healthz and /readyz, both ok, on cfg.MetricsAddr
// until ctx ends. After Uninstall, it lets a DaemonSet run the uninstall as
// a rollout: a node counts done once its pod is ready.
func HoldUninstalled(ctx context.Context, cfg Config, log *slog.Logger) error {
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok: uninstalled") }
	mux.HandleFunc("/healthz", ok)
	mux.HandleFunc("/readyz", ok)
	wait, err := serve(ctx, cfg.MetricsAddr, mux, log)
	if err != nil {
		return err
	}
	log.Info("uninstalled; holding until stopped")
	return wait()
}
