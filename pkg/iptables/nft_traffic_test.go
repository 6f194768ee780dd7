package iptables

import (
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/nodebridge/nodebridge/internal/netnstest"
)

// trafficNet is a node netns routing between a "pod" netns on a pod subnet
// and an "outside" netns that has no route back to the pod subnets: a ping
// from pod to outside gets its reply only if the node masquerades it.
type trafficNet struct {
	node, pod, outside string
}

// newTrafficNet wires pod (10.99.0.2, fd00:99::2) and outside (192.0.2.2,
// 2001:db8::2) to node, which forwards between them.
func newTrafficNet(t *testing.T, node string) trafficNet {
	t.Helper()
	tn := trafficNet{node: node, pod: netnstest.NewNS(t, "pod"), outside: netnstest.NewNS(t, "out")}
	for _, l := range []struct{ ns, dev, peer, v4, v6, peer4, peer6 string }{
		{tn.pod, "vpod", "eth0", "10.99.0.1/24", "fd00:99::1/64", "10.99.0.2/24", "fd00:99::2/64"},
		{tn.outside, "vout", "eth0", "192.0.2.1/24", "2001:db8::1/64", "192.0.2.2/24", "2001:db8::2/64"},
	} {
		netnstest.Run(t, node, "ip", "link", "add", l.dev, "type", "veth", "peer", "name", l.peer, "netns", l.ns)
		netnstest.Run(t, node, "ip", "addr", "add", l.v4, "dev", l.dev)
		netnstest.Run(t, node, "ip", "addr", "add", l.v6, "dev", l.dev, "nodad")
		netnstest.Run(t, node, "ip", "link", "set", l.dev, "up")
		netnstest.Run(t, l.ns, "ip", "addr", "add", l.peer4, "dev", l.peer)
		netnstest.Run(t, l.ns, "ip", "addr", "add", l.peer6, "dev", l.peer, "nodad")
		netnstest.Run(t, l.ns, "ip", "link", "set", l.peer, "up")
	}
	netnstest.Run(t, tn.pod, "ip", "route", "add", "default", "via", "10.99.0.1")
	netnstest.Run(t, tn.pod, "ip", "-6", "route", "add", "default", "via", "fd00:99::1")
	netnstest.Run(t, node, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
	return tn
}

// pings reports, per family, whether a ping from pod to outside got its reply.
func (tn trafficNet) pings(t *testing.T) (v4, v6 bool) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Go(func() {
		v4 = exec.Command("ip", "netns", "exec", tn.pod, "ping", "-c", "1", "-W", "2", "192.0.2.2").Run() == nil
	})
	wg.Go(func() {
		v6 = exec.Command("ip", "netns", "exec", tn.pod, "ping", "-6", "-c", "1", "-W", "2", "2001:db8::2").Run() == nil
	})
	wg.Wait()
	return v4, v6
}

// TestNFTKernelTraffic sends real packets through the nftables rules: the
// outside can only answer the node's own address, so a reply proves the
// masquerade. It also shows the documented limit: an iptables FORWARD
// policy of DROP drops pod traffic whatever our chains accept.
func TestNFTKernelTraffic(t *testing.T) {
	node, b := nftNS(t)
	var logs strings.Builder // b's calls are sequential, so no lock
	b.logf = func(format string, args ...any) {
		logs.WriteString(format + "\n")
		t.Logf(format, args...)
	}
	tn := newTrafficNet(t, node)
	n := Network{Name: "traffic", Subnets: prefixes("10.99.0.0/24", "fd00:99::/64")}
	if v4, v6 := tn.pings(t); v4 || v6 {
		t.Fatalf("without masquerade, ping answered (IPv4 %v, IPv6 %v): the outside must not route back to the pods", v4, v6)
	}
	if err := b.EnsureNetwork(t.Context(), n); err != nil {
		t.Fatalf("EnsureNetwork: %v", err)
	}
	if v4, v6 := tn.pings(t); !v4 || !v6 {
		t.Fatalf("with the nftables rules, ping answered: IPv4 %v, IPv6 %v; want both", v4, v6)
	}
	out := netnstest.Run(t, node, "nft", "list", "chain", "inet", "nodebridge", "post-"+chainHash(n.Name))
	for _, saddr := range []string{"ip saddr 10.99.0.0/24", "ip6 saddr fd00:99::/64"} {
		if !strings.Contains(out, saddr+" counter packets 1 ") {
			t.Errorf("masquerade rule %q did not count the one new flow:\n%s", saddr, out)
		}
	}
	if err := b.DeleteNetwork(t.Context(), n); err != nil {
		t.Fatalf("DeleteNetwork: %v", err)
	}
	if v4, v6 := tn.pings(t); v4 || v6 {
		t.Errorf("after DeleteNetwork, ping still answered (IPv4 %v, IPv6 %v)", v4, v6)
	}

	netnstest.Run(t, node, "iptables", "-w", "-P", "FORWARD", "DROP")
	netnstest.Run(t, node, "ip6tables", "-w", "-P", "FORWARD", "DROP")
	if err := b.EnsureNetwork(t.Context(), n); err != nil {
		t.Fatalf("EnsureNetwork under FORWARD DROP: %v", err)
	}
	if v4, v6 := tn.pings(t); v4 || v6 {
		t.Errorf("under an iptables FORWARD policy of DROP, ping answered (IPv4 %v, IPv6 %v): the limit documented on NFTables is gone?", v4, v6)
	}
	if warned := strings.Count(logs.String(), "FORWARD policy is DROP"); warned != 2 {
		t.Errorf("EnsureNetwork under FORWARD DROP logged %d warnings, want one per family:\n%s", warned, logs.String())
	}
	ipt, _ := inNS(t, node)
	if err := ipt.EnsureNetwork(t.Context(), n); err != nil {
		t.Fatalf("iptables EnsureNetwork: %v", err)
	}
	if v4, v6 := tn.pings(t); !v4 || !v6 {
		t.Errorf("with the iptables rules under FORWARD DROP, ping answered: IPv4 %v, IPv6 %v; want both", v4, v6)
	}
}
