package agent

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"time"
)

// Config is the agent's command line, one field per flag.
type Config struct {
	Kubeconfig    string         // empty: in-cluster, else $KUBECONFIG
	NodeName      string         // the Node this agent runs on
	CNIConfDir    string         // where 10-<NetworkName>.conflist is written
	NetworkName   string         // CNI network name
	Bridge        string         // bridge the plugin creates
	IPAMDataDir   string         // host-local dataDir in the conflist
	ClusterCIDRs  []netip.Prefix // at most one per family; empty: read from the cluster (kubeadm-config)
	Resync        time.Duration  // full reconcile period
	MetricsAddr   string         // listen address of /healthz, /readyz, /metrics
	IPMasqBackend string         // "", "iptables" or "nftables"
}

// Defaults returns the Config an operator gets without flags; the node name
// comes from $NODE_NAME, else the hostname.
func Defaults() Config {
	name := os.Getenv("NODE_NAME")
	if name == "" {
		name, _ = os.Hostname() // an empty name is reported by Validate
	}
	return Config{
		NodeName:    name,
		CNIConfDir:  "/etc/cni/net.d",
		NetworkName: "nodebridge",
		Bridge:      "cni0",
		IPAMDataDir: "/var/lib/cni/networks",
		Resync:      30 * time.Second,
		MetricsAddr: "127.0.0.1:9720",
	}
}

// RegisterFlags binds c's fields to fs, with c's current values as defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Kubeconfig, "kubeconfig", c.Kubeconfig, "kubeconfig file (default: in-cluster, else $KUBECONFIG)")
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
		`ipMasqBackend written into the conflist: "iptables", "nftables" or "" (host default)`)
}

// Validate reports every problem of c at once.
func (c *Config) Validate() error {
	var errs []error
	if c.NodeName == "" {
		errs = append(errs, errors.New("node-name: empty (set --node-name or $NODE_NAME)"))
	}
	if !regexp.MustCompile(`^[A-Za-z0-9_.-]+$`).MatchString(c.NetworkName) {
		errs = append(errs, fmt.Errorf("network-name %q: not [A-Za-z0-9_.-]+", c.NetworkName))
	}
	if c.Bridge == "" || len(c.Bridge) > 15 || strings.ContainsAny(c.Bridge, "/ ") {
		errs = append(errs, fmt.Errorf("bridge %q: not a link name of 1 to 15 bytes", c.Bridge))
	}
	if c.CNIConfDir == "" {
		errs = append(errs, errors.New("cni-conf-dir: empty"))
	}
	if c.IPAMDataDir == "" {
		errs = append(errs, errors.New("ipam-data-dir: empty"))
	}
	if c.Resync <= 0 {
		errs = append(errs, fmt.Errorf("resync %s: not positive", c.Resync))
	}
	if c.MetricsAddr == "" {
		errs = append(errs, errors.New("metrics-addr: empty"))
	}
	errs = append(errs, checkClusterCIDRs("cluster-cidr", c.ClusterCIDRs))
	switch c.IPMasqBackend {
	case "", "iptables", "nftables":
	default:
		errs = append(errs, fmt.Errorf(`ipmasq-backend %q: not "iptables", "nftables" or ""`, c.IPMasqBackend))
	}
	return errors.Join(errs...)
}

// confPath is the conflist the agent owns.
func (c *Config) confPath() string {
	return c.CNIConfDir + "/10-" + c.NetworkName + ".conflist"
}

// checkClusterCIDRs reports every prefix of cidrs, named by source in the
// messages, that cannot be a cluster CIDR: length 0 (every destination would
// be the pod network), IPv4-mapped IPv6 (of neither family), or a second one
// of a family.
func checkClusterCIDRs(source string, cidrs []netip.Prefix) error {
	var errs []error
	var seen [2]netip.Prefix
	for _, p := range cidrs {
		switch f := familyOf(p.Addr()); {
		case p.Addr().Is4In6():
			errs = append(errs, fmt.Errorf("%s %s: IPv4-mapped IPv6 prefix; give the IPv4 prefix", source, p))
		case p.Bits() == 0:
			errs = append(errs, fmt.Errorf("%s %s: zero length: would make every address a pod address", source, p))
		case seen[f].IsValid():
			errs = append(errs, fmt.Errorf("%s %s: a second %s prefix after %s: at most one per family", source, p, familyName(f), seen[f]))
		default:
			seen[f] = p
		}
	}
	return errors.Join(errs...)
}
