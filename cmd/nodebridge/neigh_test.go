package main_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// TestAddSeedsNeighbours checks that ADD leaves a gateway network's first
// packets nothing to resolve: in the pod, each family's gateway sits at the
// bridge's MAC; on the bridge, each pod address sits at the pod's MAC (the
// one in the result). A network that is not the gateway gets no host entry.
func TestAddSeedsNeighbours(t *testing.T) {
	t.Parallel()
	f := newFixture(t, podSubnet)
	conf := f.conf("1.1.0")
	conf["ipam"] = f.dualStackIPAM()
	p := f.newPod()
	res := mustResult(t, f.run(f.callFor("ADD", p, conf)), "1.1.0")
	brMAC := linkMAC(t, f.node, f.bridge)
	var podMAC string
	for _, i := range res.Interfaces {
		if i.Sandbox != "" {
			podMAC = i.Mac
		}
	}
	if len(res.IPs) != 2 {
		t.Fatalf("ADD gave %d addresses, want one per family", len(res.IPs))
	}
	for _, ip := range res.IPs {
		if got := neighMAC(t, p.ns, ip.Gateway.String(), p.ifName); got != brMAC {
			t.Errorf("pod's neighbour %s: lladdr %q, want the bridge's %s", ip.Gateway, got, brMAC)
		}
		if got := neighMAC(t, f.node, ip.Address.IP.String(), f.bridge); got != podMAC {
			t.Errorf("node's neighbour %s on %s: lladdr %q, want the pod's %s", ip.Address.IP, f.bridge, got, podMAC)
		}
	}

	t.Run("not the gateway", func(t *testing.T) {
		g := newFixture(t, podSubnet)
		conf := g.conf("1.1.0")
		conf["isGateway"] = false
		conf["ipMasq"] = false
		q := g.newPod()
		res := mustResult(t, g.run(g.callFor("ADD", q, conf)), "1.1.0")
		if got := neighMAC(t, g.node, res.IPs[0].Address.IP.String(), g.bridge); got != "" {
			t.Errorf("node's neighbour %s on a bridge without a gateway: lladdr %q, want no entry", res.IPs[0].Address.IP, got)
		}
	})
}

// linkMAC is dev's MAC in netns.
func linkMAC(t *testing.T, netns, dev string) string {
	t.Helper()
	var links []struct {
		Address string `json:"address"`
	}
	out := testenv.Run(t, netns, "ip", "-j", "link", "show", "dev", dev)
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		t.Fatalf("ip -j link show dev %s in %s: %q: %v", dev, netns, out, err)
	}
	return links[0].Address
}

// neighMAC is the lladdr of ip's neighbour entry on dev in netns, "" when
// there is none or it has no lladdr (INCOMPLETE, FAILED).
func neighMAC(t *testing.T, netns, ip, dev string) string {
	t.Helper()
	var entries []struct {
		LLAddr string `json:"lladdr"`
	}
	out := testenv.Run(t, netns, "ip", "-j", "neigh", "show", ip, "dev", dev)
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatalf("ip -j neigh show %s dev %s in %s: %q: %v", ip, dev, netns, out, err)
	}
	if len(entries) == 0 {
		return ""
	}
	return entries[0].LLAddr
}

// TestReusedAddressKeepsItsMAC: a pod's MAC comes from its IPv4 address,
// so a pod that talked to an address's last holder reaches its next holder
// at once, through the entry it already has.
func TestReusedAddressKeepsItsMAC(t *testing.T) {
	t.Parallel()
	f := newFixture(t, podSubnet)
	conf := f.conf("1.1.0")
	client := f.newPod()
	mustResult(t, f.run(f.callFor("ADD", client, conf)), "1.1.0")
	first := f.newPod()
	res := mustResult(t, f.run(f.callFor("ADD", first, conf)), "1.1.0")
	addr := res.IPs[0].Address.IP.To4()
	want := fmt.Sprintf("6e:62:%02x:%02x:%02x:%02x", addr[0], addr[1], addr[2], addr[3])
	if got := linkMAC(t, first.ns, first.ifName); got != want {
		t.Fatalf("pod %s: MAC %s, want %s (from its address)", addr, got, want)
	}
	testenv.Run(t, client.ns, "ping", "-c1", "-W1", addr.String())
	mustSucceed(t, f.run(f.callFor("DEL", first, conf)), "DEL")

	// The next holder of the address: the client's entry is still right.
	next := f.newPod()
	call := f.callFor("ADD", next, conf)
	call.Args = "IP=" + addr.String()
	mustResult(t, f.run(call), "1.1.0")
	if got := neighMAC(t, client.ns, addr.String(), client.ifName); got != want {
		t.Errorf("client's entry for %s: %q, want %s", addr, got, want)
	}
	testenv.Run(t, client.ns, "ping", "-c1", "-W1", addr.String())
}
