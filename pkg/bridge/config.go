package bridge

import (
	"encoding/json"
	"net"
	"net/netip"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/nodebridge/nodebridge/pkg/ipam"
	"github.com/nodebridge/nodebridge/pkg/iptables"
)

// DefaultBridge is the bridge used when the config names none.
const DefaultBridge = "cni0"

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
	MTU                       int         `json:"mtu"`
	HairpinMode               bool        `json:"hairpinMode"`
	PromiscMode               bool        `json:"promiscMode"`
	Vlan                      int         `json:"vlan"`
	VlanTrunk                 []VlanTrunk `json:"vlanTrunk,omitempty"`
	PreserveDefaultVlan       *bool       `json:"preserveDefaultVlan,omitempty"`
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
	Raw       []byte           `json:"-"` // stdin as given, for a delegated IPAM plugin
	Pool      *ipam.Pool       `json:"-"` // host-local pool; nil without in-process IPAM
	Requested []netip.Addr     `json:"-"` // runtimeConfig.ips, args.cni.ips, CNI_ARGS IP=
	MAC       net.HardwareAddr `json:"-"` // runtimeConfig.mac, args.cni.mac or CNI_ARGS MAC=
	Rules     iptables.Backend `json:"-"` // set by Parse from ipMasqBackend; tests swap in a fake
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

// Parse decodes stdin, applies defaults and validates everything at once.
func Parse(stdin []byte, p Pod) (*Config, error) {
	var c Config
	if err := json.Unmarshal(stdin, &c); err != nil {
		return nil, err
	}
	return &c, nil
}
