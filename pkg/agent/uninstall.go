package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/nodebridge/nodebridge/pkg/routes"
	"github.com/nodebridge/nodebridge/pkg/rules"
	"github.com/vishvananda/netlink"
)

// Uninstall removes what the agent put on this host: every proto-78 route,
// the VXLAN devices, the NetworkPolicy table, the FORWARD accepts of both backends (NB-AGENT-FWD and its jumps, chain
// inet nodebridge cluster-fwd), and the conflist; and the plugin's bridge
// and the network's IPAM state once no pod is left. It needs no API server.
// Pods already running keep their addresses, and the bridge, until deleted.
// Of d it uses Log, Netlink and Rules.
func Uninstall(ctx context.Context, cfg Config, d Deps) error {
	if err := cfg.Validate(); err != nil { // the network name builds the path removed
		return fmt.Errorf("config: %w", err)
	}
	return uninstall(ctx, &cfg, d.Netlink, d.Rules, d.Policy, d.Log)
}

// uninstall is Uninstall on the host reached through h and rb.
func uninstall(ctx context.Context, cfg *Config, h *netlink.Handle, rb rules.ClusterBackend, pb rules.PolicyBackend, log *slog.Logger) error {
	rs := routes.NewSyncer(h, nil, log)
	_, _, routesErr := rs.Sync(nil)
	errs := []error{routesErr}
	for _, name := range []string{TunnelV4, TunnelV6} {
		_, err := rs.DeleteTunnel(name)
		errs = append(errs, err)
	}
	if pb != nil {
		errs = append(errs, pb.DeletePolicy(ctx))
	}
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
	errs = append(errs, removeBridge(h, cfg.Bridge, log), removeIPAMState(ctx, cfg.IPAMDataDir, cfg.NetworkName, log))
	return errors.Join(errs...)
}

// removeIPAMState removes the network's host-local dir under dataDir once
// it holds no address: after the last pod, what is left is the lock and the
// bookkeeping (last_reserved_ip.N, nodebridge's index and rules note). It
// holds the network's lock meanwhile, as an ADD would. A dir that is not
// there (the agent's container mounts it only for the uninstall) is no error.
func removeIPAMState(ctx context.Context, dataDir, network string, log *slog.Logger) error {
	dir := filepath.Join(dataDir, network)
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if lock, err := os.Open(filepath.Join(dir, "lock")); err == nil {
		defer lock.Close()
		for syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			select {
			case <-ctx.Done():
				return fmt.Errorf("lock %s: %w", lock.Name(), context.Cause(ctx))
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read IPAM state %s: %w", dir, err)
	}
	var held []string
	for _, e := range ents {
		if _, err := netip.ParseAddr(e.Name()); err == nil {
			held = append(held, e.Name())
		}
	}
	if len(held) > 0 {
		log.Warn("IPAM state kept: addresses still allocated; delete their pods, then the dir", "dir", dir, "addresses", held)
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove IPAM state %s: %w", dir, err)
	}
	log.Info("IPAM state removed", "dir", dir)
	return nil
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
