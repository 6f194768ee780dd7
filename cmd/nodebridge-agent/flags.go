package main

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"

	"github.com/nodebridge/nodebridge/pkg/agent"
	"github.com/nodebridge/nodebridge/pkg/rules"
)

// options is the command line: the agent's Config and what main itself uses.
type options struct {
	cfg        agent.Config
	kubeconfig string // empty: in-cluster, else $KUBECONFIG
	uninstall  bool
	hold       bool // after --uninstall, serve ok health until SIGTERM
	version    bool // print the version and exit
	logFormat  string
	logLevel   string
}

// parseFlags reads args over the defaults; the flag package has printed
// the error and the usage when it fails.
func parseFlags(args []string) (options, error) {
	o := options{cfg: agent.Defaults(), logFormat: "text", logLevel: "info"}
	o.cfg.NodeName = defaultNodeName()
	fs := flag.NewFlagSet("nodebridge-agent", flag.ContinueOnError)
	o.register(fs)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.hold && !o.uninstall {
		err := errors.New("--hold goes with --uninstall")
		fmt.Fprintln(fs.Output(), err)
		return o, err
	}
	return o, nil
}

// defaultNodeName is $NODE_NAME, else the hostname.
func defaultNodeName() string {
	if name := os.Getenv("NODE_NAME"); name != "" {
		return name
	}
	name, _ := os.Hostname() // an empty name is reported by Validate
	return name
}

// register binds o's fields to fs, with their current values as defaults.
func (o *options) register(fs *flag.FlagSet) {
	c := &o.cfg
	fs.StringVar(&o.kubeconfig, "kubeconfig", o.kubeconfig, "kubeconfig file (default: in-cluster, else $KUBECONFIG)")
	fs.StringVar(&c.NodeName, "node-name", c.NodeName, "name of this Node (default: $NODE_NAME, else the hostname)")
	fs.StringVar(&c.CNIConfDir, "cni-conf-dir", c.CNIConfDir, "directory the conflist is written to")
	fs.StringVar(&c.NetworkName, "network-name", c.NetworkName, "CNI network name")
	fs.StringVar(&c.Bridge, "bridge", c.Bridge, "bridge the plugin attaches pods to")
	fs.StringVar(&c.IPAMDataDir, "ipam-data-dir", c.IPAMDataDir, "host-local IPAM data directory")
	fs.Func("cluster-cidr", "cluster pod CIDR, repeatable, at most one per family; peers' podCIDRs outside it are not routed"+
		" (default: networking.podSubnet of ConfigMap kube-system/kubeadm-config; not ready until found)",
		func(s string) error {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return fmt.Errorf("cluster-cidr %q: %w", s, err)
			}
			c.ClusterCIDRs = append(c.ClusterCIDRs, p.Masked())
			return nil
		})
	fs.DurationVar(&c.Resync, "resync", c.Resync, "full reconcile period")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", c.MetricsAddr, "listen address of /healthz, /readyz and /metrics")
	fs.StringVar(&c.IPMasqBackend, "ipmasq-backend", c.IPMasqBackend,
		`ipMasqBackend written into the conflist, and the backend of the agent's FORWARD accepts: "iptables", "nftables" or "" (what the host uses)`)
	fs.StringVar(&c.ConflistConfigMap, "conflist-configmap", c.ConflistConfigMap,
		"namespace/name of a ConfigMap holding the conflist template (mtu, ipMasq, hairpinMode, chained plugins), read on every resync; empty: the built-in conflist")
	fs.StringVar(&c.ConflistKey, "conflist-configmap-key", c.ConflistKey, "key of the conflist template in --conflist-configmap")
	fs.StringVar(&c.Backend, "backend", c.Backend,
		`how peers' podCIDRs are reached: "host-gw" (a route via the peer's InternalIP: peers on-link only), "vxlan" (a VXLAN tunnel to every peer) or "auto" (host-gw where the peer is on-link, VXLAN otherwise)`)
	fs.IntVar(&c.VXLANVNI, "vxlan-vni", c.VXLANVNI, "VXLAN network identifier of the tunnel devices "+agent.TunnelV4+" and "+agent.TunnelV6)
	fs.IntVar(&c.VXLANPort, "vxlan-port", c.VXLANPort, "UDP port of the VXLAN tunnels (open it between nodes)")
	fs.BoolVar(&c.NetworkPolicy, "network-policy", c.NetworkPolicy, "enforce NetworkPolicy for this node's pods in nftables (table inet "+rules.NFTPolicyTable+"); false removes that table")
	fs.BoolVar(&o.uninstall, "uninstall", o.uninstall, "remove the agent's routes, rules and conflist (and the bridge and the network's IPAM state, once no pod is left) from this host, then exit")
	fs.BoolVar(&o.hold, "hold", o.hold, "with --uninstall: afterwards serve /healthz and /readyz (ok) on --metrics-addr until SIGTERM instead of exiting, as a DaemonSet runs it")
	fs.StringVar(&o.logFormat, "log-format", o.logFormat, `log format on stderr: "text" or "json"`)
	fs.StringVar(&o.logLevel, "log-level", o.logLevel, `least severe level logged: "debug", "info", "warn" or "error"`)
	fs.BoolVar(&o.version, "version", o.version, "print the version and exit")
}
