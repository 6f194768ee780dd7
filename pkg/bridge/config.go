package bridge

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/nodebridge/nodebridge/pkg/ipam"
	"github.com/nodebridge/nodebridge/pkg/rules"
)

// DefaultBridge is the bridge used when the config names none.
const DefaultBridge = "cni0"

// hostLocalType is the IPAM type nodebridge runs in process.
const hostLocalType = "host-local"

// MaxConfigSize bounds the network config on stdin: a real config is a
// few KiB; more is a runaway producer.
const MaxConfigSize = 1 << 20

// Config mirrors the reference bridge plugin's network configuration, plus the
// fields a runtime injects (prevResult, runtimeConfig, args, valid attachments).
type Config struct {
	CNIVersion string `json:"cniVersion"`
	Name       string `json:"name"`
	Type       string `json:"type"`

	Bridge                    string      `json:"bridge"`
	IsGateway                 bool        `json:"isGateway"`
	IsDefaultGateway          bool        `json:"isDefaultGateway"`
	ForceAddress              bool        `json:"forceAddress"`
	IPMasq                    bool        `json:"ipMasq"`
	IPMasqBackend             string      `json:"ipMasqBackend,omitempty"`
	NonMasqueradeCIDRs        []string    `json:"nonMasqueradeCIDRs,omitempty"`
	MTU                       int         `json:"mtu"`
	HairpinMode               bool        `json:"hairpinMode"`
	PromiscMode               bool        `json:"promiscMode"`
	Vlan                      int         `json:"vlan"`
	VlanTrunk                 []VlanTrunk `json:"vlanTrunk,omitempty"`
	PreserveDefaultVlan       bool        `json:"preserveDefaultVlan"`
	MacSpoofChk               bool        `json:"macspoofchk"`
	EnableDad                 bool        `json:"enabledad"`
	DisableContainerInterface bool        `json:"disableContainerInterface"`
	PortIsolation             bool        `json:"portIsolation"`

	IPAM *ipam.Config `json:"ipam,omitempty"`
	DNS  types.DNS    `json:"dns"`

	Args          Args          `json:"args"`
	RuntimeConfig RuntimeConfig `json:"runtimeConfig"`

	RawPrevResult    map[string]any       `json:"prevResult,omitempty"`
	ValidAttachments []types.GCAttachment `json:"cni.dev/valid-attachments,omitempty"`

	// Filled by Parse, not from JSON.
	Raw           []byte           `json:"-"` // stdin as given, for a delegated IPAM plugin
	Requested     []netip.Addr     `json:"-"` // runtimeConfig.ips, args.cni.ips, CNI_ARGS IP=
	MAC           net.HardwareAddr `json:"-"` // runtimeConfig.mac, args.cni.mac or CNI_ARGS MAC=
	NonMasquerade []netip.Prefix   `json:"-"` // nonMasqueradeCIDRs, parsed
	addresser     addresser        `json:"-"` // from the ipam section: host-local (with its pool), delegated or none
}

// VlanTrunk is one entry of vlanTrunk: a single id or a min/max span.
type VlanTrunk struct {
	MinID *int `json:"minID,omitempty"`
	MaxID *int `json:"maxID,omitempty"`
	ID    *int `json:"id,omitempty"`
}

// Args is the "args" object; only args.cni is read.
type Args struct {
	CNI struct {
		IPs []string `json:"ips,omitempty"`
		MAC string   `json:"mac,omitempty"`
	} `json:"cni"`
}

// RuntimeConfig holds the capabilities a runtime injects.
type RuntimeConfig struct {
	IPs      []string             `json:"ips,omitempty"`
	MAC      string               `json:"mac,omitempty"`
	IPRanges [][]ipam.RangeConfig `json:"ipRanges,omitempty"`
}

// Pod is the attachment a call is about, from CNI_CONTAINERID, CNI_NETNS and CNI_IFNAME.
type Pod struct {
	ContainerID string
	Netns       string
	IfName      string
	Args        string // CNI_ARGS
}

// setDefaults is the one place defaults live.
func (c *Config) setDefaults() {
	if c.Bridge == "" {
		c.Bridge = DefaultBridge
	}
	if c.IsDefaultGateway {
		c.IsGateway = true // a default route via the bridge needs the bridge to be the gateway
	}
}

// Validate checks the fields taken from JSON, reporting every problem at once.
// It expects defaults applied, as Parse does.
func (c *Config) Validate() error {
	return errors.Join(append(c.validateNames(), c.validateOptions()...)...)
}

// CheckNetworkName checks the network name, which names the network's
// store directory and rules; ErrInvalid when it is missing or not a name.
func (c *Config) CheckNetworkName() error {
	if err := rules.CheckName(c.Name); err != nil {
		return problemf(ErrInvalid, "network name %q: %w", c.Name, err)
	}
	return nil
}

// validateNames checks what every verb uses to name the network's state:
// the network name (a directory and a rule comment), the bridge, the
// delegated IPAM plugin (a file in CNI_PATH) and the valid attachments.
func (c *Config) validateNames() []error {
	var errs []error
	if err := c.CheckNetworkName(); err != nil {
		errs = append(errs, err)
	}
	if err := rules.CheckIfName(c.Bridge); err != nil {
		errs = append(errs, problemf(ErrInvalid, "bridge %q: %w", c.Bridge, err))
	}
	if c.layer3() && c.IPAM.Type != hostLocalType {
		if err := checkPluginName(c.IPAM.Type); err != nil {
			errs = append(errs, problemf(ErrInvalid, "ipam.type %q: %w", c.IPAM.Type, err))
		}
	}
	for i, a := range c.ValidAttachments {
		if a.ContainerID == "" || a.IfName == "" {
			errs = append(errs, problemf(ErrInvalid, "cni.dev/valid-attachments[%d] {containerID %q, ifname %q}: both required",
				i, a.ContainerID, a.IfName))
		}
	}
	return errs
}

// validateOptions checks the fields that shape what an ADD creates.
func (c *Config) validateOptions() []error {
	var errs []error
	if c.MTU != 0 && (c.MTU < 68 || c.MTU > 65535) {
		errs = append(errs, problemf(ErrInvalid, "mtu %d: must be between 68 and 65535", c.MTU))
	}
	if c.HairpinMode && c.PromiscMode {
		errs = append(errs, problemf(ErrInvalid, "hairpinMode and promiscMode: conflicting, set at most one"))
	}
	if c.DisableContainerInterface && c.layer3() {
		errs = append(errs, problemf(ErrInvalid, "disableContainerInterface true with ipam.type %q: an interface left down cannot take addresses", c.IPAM.Type))
	}
	errs = append(errs, c.validateVlan()...)
	errs = append(errs, c.validateMasqBackend())
	_, cidrErrs := c.parseNonMasquerade()
	return append(errs, cidrErrs...)
}

// validateMasqBackend checks ipMasqBackend. The reference reads it only
// when masquerading, so neither do we.
func (c *Config) validateMasqBackend() error {
	switch c.IPMasqBackend {
	case "", rules.IPTablesName, rules.NFTablesName:
		return nil
	}
	if !c.IPMasq {
		return nil
	}
	return problemf(ErrInvalid, "ipMasqBackend %q: must be \"iptables\" or \"nftables\"", c.IPMasqBackend)
}

// RulesBackend is the ipMasqBackend to select the rules backend by: as
// configured, or "" (the one the host already uses) when unset or, as only
// DEL and GC accept (see ModeRelease), not a backend.
func (c *Config) RulesBackend() string {
	switch c.IPMasqBackend {
	case rules.IPTablesName, rules.NFTablesName:
		return c.IPMasqBackend
	}
	return ""
}

// parseNonMasquerade parses nonMasqueradeCIDRs, one problem per bad entry.
// Host bits are ignored, as the rules match the masked prefix.
func (c *Config) parseNonMasquerade() ([]netip.Prefix, []error) {
	var out []netip.Prefix
	var errs []error
	for i, s := range c.NonMasqueradeCIDRs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			errs = append(errs, problemf(ErrInvalid, "nonMasqueradeCIDRs[%d] %q: not a CIDR", i, s))
			continue
		}
		out = append(out, p.Masked())
	}
	return out, errs
}

// layer3 reports whether the network has IPAM: without ipam.type the pods
// get no addresses and the plugin works at layer 2 only, as in the reference.
func (c *Config) layer3() bool {
	return c.IPAM != nil && c.IPAM.Type != ""
}

// problem is one thing wrong with the input. Its message names the JSON path
// (or variable) and value; it wraps the sentinel that picks the CNI code
// without repeating the sentinel's text, so a joined list stays readable.
type problem struct {
	kind error // ErrDecode, ErrInvalid or ErrEnv
	err  error
}

// problemf formats a problem of the given kind; %w in format keeps a cause.
func problemf(kind error, format string, args ...any) error {
	return &problem{kind: kind, err: fmt.Errorf(format, args...)}
}

func (p *problem) Error() string { return p.err.Error() }

// Unwrap lets errors.Is find the kind, and any cause wrapped with %w.
func (p *problem) Unwrap() []error { return []error{p.kind, p.err} }

// checkPluginName keeps a delegated IPAM type a file name inside CNI_PATH.
func checkPluginName(s string) error {
	if s == "." || s == ".." || strings.ContainsAny(s, "/\x00") {
		return errors.New("must be a plain file name")
	}
	return nil
}
