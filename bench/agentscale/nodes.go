package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/nodebridge/nodebridge/internal/lab"
	"github.com/nodebridge/nodebridge/pkg/routes"
)

// The address plan. The agent's node keeps the lab's 198.18.0.11 and gets it
// a second time as a /15, so every peer InternalIP below is on-link; peers
// live in 198.19.0.0/16, clear of the lab's own 198.18.0.0/24.
var (
	underlayWide = netip.MustParsePrefix("198.18.0.0/15")
	clusterCIDR  = netip.MustParsePrefix("10.0.0.0/8")
)

// ownIndex is the lab node index of the agent's node (198.18.0.11).
const ownIndex = 1

// nodeName is the Node object name of index i; 0 is the agent's own.
func nodeName(i int) string { return fmt.Sprintf("scale-%04d", i) }

// podCIDR is the /24 of 10.0.0.0/8 that Node i owns: 10.<i/256>.<i%256>.0/24.
func podCIDR(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24)
}

// offLinkEvery makes every offLinkEvery-th peer off-link (0: none): run
// sets it from -offlink-every for the main phases and clears it for the
// comparison with flanneld, whose host-gw backend routes on-link peers only.
var offLinkEvery int

// offLink reports whether peer i is behind a router: the agent (--backend
// auto) reaches it through VXLAN.
func offLink(i int) bool { return i > 0 && offLinkEvery > 0 && i%offLinkEvery == 0 }

// peerIP is the InternalIP of peer i (i ≥ 1): 198.19.<i/250>.<1+i%250>,
// which keeps .0 and .255 out of the last octet so every address reads as
// an ordinary host; an off-link peer's is the same host in 100.64.0.0/16,
// outside the node's /15, reached through its default gateway.
func peerIP(i int) netip.Addr {
	if offLink(i) {
		return netip.AddrFrom4([4]byte{100, 64, byte(i / 250), byte(1 + i%250)})
	}
	return netip.AddrFrom4([4]byte{198, 19, byte(i / 250), byte(1 + i%250)})
}

// maxPeer is the last index the address plan covers without reuse.
const maxPeer = 250*256 - 1

// spec is the Node object of index i: the own node at the lab's address,
// every other at its peer address.
func spec(i int) lab.NodeSpec {
	ip := peerIP(i)
	if i == 0 {
		ip = lab.NodeIPv4(ownIndex)
	}
	return lab.NodeSpec{Name: nodeName(i), PodCIDRs: []netip.Prefix{podCIDR(i)}, InternalIPs: []netip.Addr{ip}}
}

// routeSet is what the agent must install for a set of peers: each peer's
// podCIDR via its InternalIP.
type routeSet map[netip.Prefix]netip.Addr

// wantRoutes is the route set of peers: via the InternalIP, or via the
// podCIDR's first address (the VTEP) for an off-link peer.
func wantRoutes(peers []int) routeSet {
	want := make(routeSet, len(peers))
	for _, i := range peers {
		want[podCIDR(i)] = peerIP(i)
		if offLink(i) {
			want[podCIDR(i)] = podCIDR(i).Addr()
		}
	}
	return want
}

// tunnelSet is what the VXLAN device must hold for a set of peers:
// forwarding entries (MAC to InternalIP) and neighbours (VTEP to MAC).
type tunnelSet struct {
	fdb   map[string]netip.Addr
	neigh map[netip.Addr]string
}

// wantTunnel is the tunnel set of the off-link ones among peers.
func wantTunnel(peers []int) tunnelSet {
	t := tunnelSet{fdb: map[string]netip.Addr{}, neigh: map[netip.Addr]string{}}
	for _, i := range peers {
		if offLink(i) {
			mac := routes.VTEPMAC(peerIP(i)).String()
			t.fdb[mac], t.neigh[podCIDR(i).Addr()] = peerIP(i), mac
		}
	}
	return t
}

// span returns the ints from lo to hi inclusive.
func span(lo, hi int) []int {
	var s []int
	for i := lo; i <= hi; i++ {
		s = append(s, i)
	}
	return s
}

// forEach runs f for each job on the given number of workers and returns
// when the last call returned. It keeps going past failures and reports
// the first few.
func forEach(ctx context.Context, jobs, workers int, f func(ctx context.Context, job int) error) (time.Time, error) {
	next := make(chan int)
	var (
		mu   sync.Mutex
		errs []error
		last time.Time
		wg   sync.WaitGroup
	)
	for range min(workers, max(jobs, 1)) {
		wg.Go(func() {
			for j := range next {
				err := f(ctx, j)
				mu.Lock()
				if err != nil && len(errs) < 5 {
					errs = append(errs, err)
				}
				if now := time.Now(); now.After(last) {
					last = now
				}
				mu.Unlock()
			}
		})
	}
	for j := range jobs {
		next <- j
	}
	close(next)
	wg.Wait()
	return last, errors.Join(errs...)
}
