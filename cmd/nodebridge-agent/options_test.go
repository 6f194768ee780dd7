package main

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestFlags(t *testing.T) {
	t.Setenv("NODE_NAME", "node-7")
	o, err := parseFlags([]string{"--cluster-cidr", "10.244.0.1/16", "--cluster-cidr=fd00:10:244::/56", "--resync=5s", "--ipmasq-backend=nftables"})
	if err != nil {
		t.Fatal(err)
	}
	c := o.cfg
	if c.NodeName != "node-7" || c.CNIConfDir != "/etc/cni/net.d" || c.NetworkName != "nodebridge" || c.Bridge != "cni0" ||
		c.IPAMDataDir != "/var/lib/cni/networks" || c.MetricsAddr != "127.0.0.1:9720" || c.Resync != 5*time.Second || c.IPMasqBackend != "nftables" {
		t.Errorf("got %+v", c)
	}
	if o.kubeconfig != "" || o.uninstall || o.logFormat != "text" {
		t.Errorf("kubeconfig %q uninstall %v log-format %q, want \"\", false, text", o.kubeconfig, o.uninstall, o.logFormat)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("fd00:10:244::/56")}
	if !slices.Equal(c.ClusterCIDRs, want) {
		t.Errorf("cluster CIDRs (masked): got %v", c.ClusterCIDRs)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
	if _, err := parseFlags([]string{"--cluster-cidr=10.0.0.0"}); err == nil {
		t.Error("a cluster CIDR without length: no error")
	}
}
