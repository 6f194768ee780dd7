package agent

import (
	"io"
	"log/slog"
	"net/netip"
	"os"
	"testing"

	"github.com/nodebridge/nodebridge/internal/testenv"
	corev1 "k8s.io/api/core/v1"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// node builds a Node with podCIDRs and InternalIPs.
func node(name string, podCIDRs []string, ips ...string) *corev1.Node {
	n := &corev1.Node{}
	n.Name = name
	n.Spec.PodCIDRs = podCIDRs
	if len(podCIDRs) > 0 {
		n.Spec.PodCIDR = podCIDRs[0]
	}
	for _, ip := range ips {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip})
	}
	return n
}

// pfx parses prefixes, failing the test on a bad one.
func pfx(t testing.TB, ss ...string) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, s := range ss {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// discard is a logger for tests that check state, not log lines.
func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// pfxAddrs parses addresses.
func pfxAddrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}
