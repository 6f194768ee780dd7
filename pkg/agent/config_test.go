package agent

import (
	"cmp"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// The defaults an operator gets without flags, and the conflist they name.
func TestDefaults(t *testing.T) {
	c := Defaults()
	c.NodeName = "node-7" // from the environment, by cmd
	if c.CNIConfDir != "/etc/cni/net.d" || c.NetworkName != "nodebridge" || c.Bridge != "cni0" ||
		c.IPAMDataDir != "/var/lib/cni/networks" || c.MetricsAddr != "127.0.0.1:9720" || c.Resync != 30*time.Second {
		t.Errorf("got %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
	if c.confPath() != "/etc/cni/net.d/10-nodebridge.conflist" {
		t.Errorf("conf path: %s", c.confPath())
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := Config{NetworkName: "a b", Bridge: "a-bridge-name-too-long", IPMasqBackend: "pf"}
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"node-name", "network-name", "bridge", "cni-conf-dir", "ipam-data-dir", "resync", "metrics-addr", "ipmasq-backend"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
}

// A cluster CIDR that would make every address a pod address, one of
// neither family, or a second of a family, stops the agent at start with
// an error naming the flag.
func TestValidateClusterCIDRs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags []string
		want  string // "" valid
	}{
		{"one per family", []string{"10.244.0.0/16", "fd00:10:244::/56"}, ""},
		{"IPv6 only", []string{"fd00:10:244::/56"}, ""},
		{"two IPv4", []string{"10.244.0.0/16", "10.96.0.0/16"}, "cluster-cidr 10.96.0.0/16: a second IPv4 prefix after 10.244.0.0/16"},
		{"two IPv6", []string{"fd00:1::/56", "fd00:2::/56"}, "cluster-cidr fd00:2::/56: a second IPv6 prefix"},
		{"IPv4 everything", []string{"0.0.0.0/0"}, "cluster-cidr 0.0.0.0/0: zero length"},
		{"IPv6 everything", []string{"::/0"}, "cluster-cidr ::/0: zero length"},
		{"v4-mapped", []string{"::ffff:10.244.0.0/112"}, "cluster-cidr ::ffff:10.244.0.0/112: IPv4-mapped"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Defaults()
			c.NodeName = "node-7"
			for _, f := range tc.flags { // as --cluster-cidr reads them
				c.ClusterCIDRs = append(c.ClusterCIDRs, netip.MustParsePrefix(f).Masked())
			}
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("got %v, want valid", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// The agent refuses the network and bridge names the plugin refuses, with
// the plugin's reasons, naming the flag: the same list is in
// pkg/bridge's TestParseNamesAsTheAgent.
func TestValidateNamesAsThePlugin(t *testing.T) {
	for _, tc := range testenv.RefusedNames() {
		value, flag := tc.Network, "network-name"
		if tc.Bridge != "" {
			value, flag = tc.Bridge, "bridge"
		}
		want := fmt.Sprintf("%s %q: %s", flag, value, tc.Reason)
		t.Run(want, func(t *testing.T) {
			c := Defaults()
			c.NodeName = "node-7"
			c.NetworkName = cmp.Or(tc.Network, c.NetworkName)
			c.Bridge = cmp.Or(tc.Bridge, c.Bridge)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("got %v, want an error containing %q", err, want)
			}
		})
	}
}
