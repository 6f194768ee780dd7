package main_test

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// The "outside" network: the node's uplink and a host beyond it that has no
// route to the pod subnet, so a reply reaches a pod only if it was masqueraded.
const (
	uplink      = "nbup0"
	nodeUplink  = "198.18.0.1"
	outsideAddr = "198.18.0.2"
)

// newOutside makes a netns joined to the node by a veth pair, with
// 198.18.0.1/24 on the node side and 198.18.0.2/24 outside, and returns it.
func (f *fixture) newOutside() string {
	f.t.Helper()
	out := testenv.NewNS(f.t, "out")
	testenv.Run(f.t, f.node, "ip", "link", "add", uplink, "type", "veth", "peer", "name", "eth0", "netns", out)
	testenv.Run(f.t, f.node, "ip", "addr", "add", nodeUplink+"/24", "dev", uplink)
	testenv.Run(f.t, f.node, "ip", "link", "set", uplink, "up")
	testenv.Run(f.t, out, "ip", "addr", "add", outsideAddr+"/24", "dev", "eth0")
	testenv.Run(f.t, out, "ip", "link", "set", "eth0", "up")
	return out
}

// ping sends one echo request from netns to addr and fails t without a reply.
func ping(t *testing.T, netns, addr string) {
	t.Helper()
	testenv.Run(t, netns, "ping", "-c1", "-W2", addr)
}

// sourceSeenOutside sends UDP datagrams from the pod netns to a listener on
// the outside netns's IPv4 address and returns the source address it saw.
func sourceSeenOutside(t *testing.T, podNS, outNS string) netip.Addr {
	t.Helper()
	return sourceSeenOutsideAt(t, podNS, outNS, outsideAddr)
}

// sourceSeenOutsideAt is sourceSeenOutside to a listener on addr, of either
// family. Each socket is made inside its netns and stays there.
func sourceSeenOutsideAt(t *testing.T, podNS, outNS, addr string) netip.Addr {
	t.Helper()
	var ln *net.UDPConn
	err := ns.WithNetNSPath(testenv.Path(outNS), func(ns.NetNS) error {
		var err error
		ln, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(addr)})
		return err
	})
	if err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, outNS, err)
	}
	defer ln.Close()
	payload := []byte("nodebridge masquerade probe")
	err = ns.WithNetNSPath(testenv.Path(podNS), func(ns.NetNS) error {
		c, err := net.DialUDP("udp", nil, ln.LocalAddr().(*net.UDPAddr))
		if err != nil {
			return err
		}
		defer c.Close()
		for range 3 { // UDP may drop one; the listener needs only one
			if _, err := c.Write(payload); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("send UDP from %s to %s: %v", podNS, ln.LocalAddr(), err)
	}
	if err := ln.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatalf("set read deadline on %s: %v", ln.LocalAddr(), err)
	}
	buf := make([]byte, 128)
	n, from, err := ln.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("receive UDP from pod %s in %s: %v", podNS, outNS, err)
	}
	if !bytes.Equal(buf[:n], payload) {
		t.Fatalf("outside received %q, want %q", buf[:n], payload)
	}
	return from.Addr().Unmap()
}
