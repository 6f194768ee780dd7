package main

import (
	"context"
	"log/slog"
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

// TestLogLevel: --log-level sets the least severe level logged; info by default.
func TestLogLevel(t *testing.T) {
	o, err := parseFlags(nil)
	if err != nil || o.logLevel != "info" {
		t.Fatalf("default log-level %q (%v), want info", o.logLevel, err)
	}
	for _, tc := range []struct {
		level string
		least slog.Level
	}{{"debug", slog.LevelDebug}, {"info", slog.LevelInfo}, {"warn", slog.LevelWarn}, {"error", slog.LevelError}} {
		l, err := newLogger("json", tc.level)
		if err != nil {
			t.Fatalf("%s: %v", tc.level, err)
		}
		ctx := context.Background()
		if !l.Enabled(ctx, tc.least) || l.Enabled(ctx, tc.least-1) {
			t.Errorf("log-level %s: %v enabled %v, %v enabled %v", tc.level, tc.least, l.Enabled(ctx, tc.least), tc.least-1, l.Enabled(ctx, tc.least-1))
		}
	}
	if _, err := newLogger("text", "INFO"); err == nil {
		t.Error("log-level INFO: no error")
	}
}
