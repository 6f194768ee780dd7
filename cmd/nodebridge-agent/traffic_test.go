package main_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/nodebridge/nodebridge/internal/lab"
)

// seenSource connects from netns `from` to a listener it opens in netns
// `to` at dst, and returns the source address the listener saw: the
// client's own address if nothing NATed it on the way.
func seenSource(from, to string, dst netip.Addr) (netip.Addr, error) {
	ln, err := lab.Listen(to, "tcp", net.JoinHostPort(dst.String(), "0"))
	if err != nil {
		return netip.Addr{}, err
	}
	defer ln.Close()
	seen := make(chan netip.Addr, 1)
	go func() {
		defer close(seen)
		c, err := ln.Accept()
		if err != nil {
			return // the listener closed: the client's error says why
		}
		defer c.Close()
		seen <- netip.MustParseAddrPort(c.RemoteAddr().String()).Addr().Unmap()
		_, _ = io.WriteString(c, "ok") // the client reads it or has given up
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := lab.Dialer(from)(ctx, "tcp", ln.Addr().String())
	if err != nil {
		return netip.Addr{}, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second)) // a dead connection shows as a short read
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "ok" {
		return netip.Addr{}, fmt.Errorf("read answer from %s: %q, %v", ln.Addr(), b, err)
	}
	return <-seen, nil
}

// assertNoNAT connects from pod a to pod b (other nodes) over the family
// of v6 and checks that b saw a's own pod address.
func assertNoNAT(t *testing.T, a, b *lab.Pod, v6 bool) {
	t.Helper()
	src, dst := a.IP(v6), b.IP(v6)
	var seen netip.Addr
	var first error
	// A few tries: the first SYN may wait on neighbour resolution.
	d := waitFor(t, 5*time.Second, fmt.Sprintf("%s (%s) connects to %s (%s)", a.Name, src, b.Name, dst), func() error {
		var err error
		seen, err = seenSource(a.Netns, b.Netns, dst)
		if first == nil {
			first = err
		}
		return err
	})
	if first != nil {
		t.Logf("%s to %s: connected after %v; the first try failed: %v", a.Name, b.Name, d.Round(time.Millisecond), first)
	}
	if seen != src {
		t.Errorf("%s saw the connection from %s come from %s, want %s (no NAT)", b.Name, a.Name, seen, src)
	}
}

// testPodToPod: each pod reaches the pod of the next node, and is seen
// with its own pod address.
func testPodToPod(t *testing.T, c *cluster, v6 bool) {
	for i, a := range c.pods {
		b := c.pods[(i+1)%len(c.pods)]
		assertNoNAT(t, a, b, v6)
	}
}

// testPodToUnderlay: a pod reaches the underlay host, outside the cluster
// CIDRs, masqueraded as its node's address of the family.
func testPodToUnderlay(t *testing.T, c *cluster) {
	checkMasqueraded(t, c, c.pods[0], c.nodes[0])
}
