package agent

import (
	"flag"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestFlags(t *testing.T) {
	t.Setenv("NODE_NAME", "node-7")
	c := Defaults()
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse([]string{"--cluster-cidr", "10.244.0.1/16", "--cluster-cidr=fd00:10:244::/56", "--resync=5s", "--ipmasq-backend=nftables"}); err != nil {
		t.Fatal(err)
	}
	if c.NodeName != "node-7" || c.CNIConfDir != "/etc/cni/net.d" || c.NetworkName != "nodebridge" || c.Bridge != "cni0" ||
		c.IPAMDataDir != "/var/lib/cni/networks" || c.MetricsAddr != "127.0.0.1:9720" || c.Resync != 5*time.Second || c.IPMasqBackend != "nftables" {
		t.Errorf("got %+v", c)
	}
	if !slices.Equal(c.ClusterCIDRs, pfx(t, "10.244.0.0/16", "fd00:10:244::/56")) {
		t.Errorf("cluster CIDRs (masked): got %v", c.ClusterCIDRs)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
	if c.confPath() != "/etc/cni/net.d/10-nodebridge.conflist" {
		t.Errorf("conf path: %s", c.confPath())
	}
	if err := fs.Parse([]string{"--cluster-cidr=10.0.0.0"}); err == nil {
		t.Error("a cluster CIDR without length: no error")
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
			t.Setenv("NODE_NAME", "node-7")
			c := Defaults()
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			c.RegisterFlags(fs)
			var args []string
			for _, f := range tc.flags {
				args = append(args, "--cluster-cidr="+f)
			}
			if err := fs.Parse(args); err != nil {
				t.Fatal(err)
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
