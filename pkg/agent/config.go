package agent

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/nodebridge/nodebridge/pkg/rules"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Config is what the agent does, as plain data: cmd fills it from the
// command line, one field per flag. Its dependencies come apart, in Deps.
type Config struct {
	NodeName      string         // the Node this agent runs on
	CNIConfDir    string         // where 10-<NetworkName>.conflist is written
	NetworkName   string         // CNI network name
	Bridge        string         // bridge the plugin creates
	IPAMDataDir   string         // host-local dataDir in the conflist
	ClusterCIDRs  []netip.Prefix // at most one per family; empty: read from the cluster (kubeadm-config)
	Resync        time.Duration  // full reconcile period
	MetricsAddr   string         // listen address of /healthz, /readyz, /metrics
	IPMasqBackend string         // "", "iptables" or "nftables"
	// ConflistConfigMap is "namespace/name" of the ConfigMap holding the
	// conflist template at key ConflistKey; empty: the built-in conflist.
	ConflistConfigMap string
	ConflistKey       string
	// Backend is how peers' podCIDRs are reached: BackendHostGW routes via
	// the peer's InternalIP, on-link peers only; BackendVXLAN tunnels to
	// every peer; BackendAuto routes on-link peers the host-gw way and
	// tunnels to the others.
	Backend   string
	VXLANVNI  int // VXLAN network identifier of both devices
	VXLANPort int // UDP port of the tunnels, both ends
	// NetworkPolicy enforces the cluster's NetworkPolicies for this
	// node's pods (table inet nodebridge-policy); false removes that table.
	NetworkPolicy bool
}

// The backends, as --backend spells them.
const (
	BackendAuto   = "auto"
	BackendHostGW = "host-gw"
	BackendVXLAN  = "vxlan"
)

// The VXLAN devices, one per family, and their defaults: flannel's VXLAN
// backend's VNI and the Linux kernel's VXLAN port, so a firewall opened for
// flannel lets these through.
const (
	TunnelV4         = "nb.vxlan"
	TunnelV6         = "nb.vxlan6"
	DefaultVXLANVNI  = 1
	DefaultVXLANPort = 8472
)

// Defaults returns the Config an operator gets without flags, but for the
// node name, which cmd finds in the environment.
func Defaults() Config {
	return Config{
		CNIConfDir:  "/etc/cni/net.d",
		NetworkName: "nodebridge",
		Bridge:      "cni0",
		IPAMDataDir: "/var/lib/cni/networks",
		Resync:      30 * time.Second,
		MetricsAddr: "127.0.0.1:9720",
		ConflistKey: "cni-conf.json",
		Backend:     BackendAuto,
		VXLANVNI:    DefaultVXLANVNI,
		VXLANPort:   DefaultVXLANPort,

		NetworkPolicy: true,
	}
}

// Validate reports every problem of c at once.
func (c *Config) Validate() error {
	var errs []error
	if c.NodeName == "" {
		errs = append(errs, errors.New("node-name: empty (set --node-name or $NODE_NAME)"))
	}
	// The plugin's rules, so that the agent never writes a conflist the plugin refuses.
	if err := rules.CheckName(c.NetworkName); err != nil {
		errs = append(errs, fmt.Errorf("network-name %q: %w", c.NetworkName, err))
	}
	if err := rules.CheckIfName(c.Bridge); err != nil {
		errs = append(errs, fmt.Errorf("bridge %q: %w", c.Bridge, err))
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
	errs = append(errs, checkClusterCIDRs("cluster-cidr", c.ClusterCIDRs), c.checkConflistConfigMap())
	switch c.IPMasqBackend {
	case "", rules.IPTablesName, rules.NFTablesName:
	default:
		errs = append(errs, fmt.Errorf(`ipmasq-backend %q: not "iptables", "nftables" or ""`, c.IPMasqBackend))
	}
	switch c.Backend {
	case BackendAuto, BackendHostGW, BackendVXLAN:
	default:
		errs = append(errs, fmt.Errorf(`backend %q: not "auto", "host-gw" or "vxlan"`, c.Backend))
	}
	if c.VXLANVNI < 1 || c.VXLANVNI > 1<<24-1 {
		errs = append(errs, fmt.Errorf("vxlan-vni %d: not in 1..16777215", c.VXLANVNI))
	}
	if c.VXLANPort < 1 || c.VXLANPort > 65535 {
		errs = append(errs, fmt.Errorf("vxlan-port %d: not in 1..65535", c.VXLANPort))
	}
	return errors.Join(errs...)
}

// tunnels reports whether the backend may tunnel.
func (c *Config) tunnels() bool { return c.Backend != BackendHostGW }

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

// checkConflistConfigMap checks the ConfigMap's reference: namespace/name
// and a key, each a valid Kubernetes name.
func (c *Config) checkConflistConfigMap() error {
	if c.ConflistConfigMap == "" {
		return nil
	}
	var errs []error
	ns, name, ok := strings.Cut(c.ConflistConfigMap, "/")
	if !ok {
		errs = append(errs, fmt.Errorf("conflist-configmap %q: not namespace/name", c.ConflistConfigMap))
	}
	for _, msg := range append(validation.IsDNS1123Label(ns), validation.IsDNS1123Subdomain(name)...) {
		errs = append(errs, fmt.Errorf("conflist-configmap %q: %s", c.ConflistConfigMap, msg))
	}
	for _, msg := range validation.IsConfigMapKey(c.ConflistKey) {
		errs = append(errs, fmt.Errorf("conflist-configmap-key %q: %s", c.ConflistKey, msg))
	}
	return errors.Join(errs...)
}
