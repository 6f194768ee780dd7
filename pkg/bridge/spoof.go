package bridge

import (
	"context"
	"fmt"
	"net"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/nodebridge/nodebridge/pkg/spoofchk"
)

// ensureSpoofCheck lets only the pod interface's MAC in through the pod's
// bridge port, before the pod has an address to send from, and returns the
// undo; with macspoofchk off (no h.Spoof) it does nothing.
func ensureSpoofCheck(ctx context.Context, h *Host, pair *vethPair, ifName string) (func() error, error) {
	sc := h.Spoof
	if sc == nil {
		return func() error { return nil }, nil
	}
	host, mac := pair.host.Name, pair.podMAC
	if err := sc.EnsurePort(ctx, spoofchk.Port{IfName: host, MAC: mac}); err != nil {
		return nil, fmt.Errorf("macspoofchk of container interface %s (MAC %s): %w", ifName, mac, err)
	}
	return undoStep(ctx, func(ctx context.Context) error { return deleteSpoofCheck(ctx, h, host) }), nil
}

// deleteSpoofCheck removes the spoof check of the pod whose host veth is
// host; nothing there is success.
func deleteSpoofCheck(ctx context.Context, h *Host, host string) error {
	sc := h.Spoof
	if sc == nil {
		return nil
	}
	if err := sc.DeletePort(ctx, host); err != nil {
		return fmt.Errorf("macspoofchk of host veth %s: %w", host, err)
	}
	return nil
}

// checkSpoofCheck insists the pod's port lets in the container interface's
// MAC of prev, and no other.
func checkSpoofCheck(ctx context.Context, c *Config, h *Host, p Pod, prev *current.Result) error {
	sc := h.Spoof
	if sc == nil {
		return nil
	}
	var mac net.HardwareAddr
	for _, i := range prev.Interfaces {
		if i.Name == p.IfName && i.Sandbox != "" {
			mac, _ = net.ParseMAC(i.Mac) // an unparsable MAC is reported below as none
		}
	}
	if mac == nil {
		return fmt.Errorf("macspoofchk of container interface %s: prevResult gives it no MAC", p.IfName)
	}
	host := hostName(c, p, prev)
	if err := sc.CheckPort(ctx, spoofchk.Port{IfName: host, MAC: mac}); err != nil {
		return fmt.Errorf("macspoofchk of container interface %s (MAC %s, host veth %s): %w", p.IfName, mac, host, err)
	}
	return nil
}
