package main

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net/netip"
)

// The busy rounds' kube-proxy load: S Services, each a ClusterIP on TCP port
// 80 with two endpoints, written the way kube-proxy's iptables or nftables
// mode writes them. Every address is in 198.18.0.0/15, the range set aside
// for benchmarks (RFC 2544): the rules only have to load, nothing is ever
// sent to them. ClusterIPs are in 198.18.0.0/16, endpoints in 198.19.0.0/16.
func clusterIPBase() netip.Addr { return netip.AddrFrom4([4]byte{198, 18, 0, 0}) }

func endpointBase() netip.Addr { return netip.AddrFrom4([4]byte{198, 19, 0, 0}) }

// maxServices is the most Services the ClusterIP half of the range holds.
const maxServices = 1<<16 - 2

// endpointsPerService is how many endpoints each Service has: the first
// picked with probability 1/2, the second taking the rest, as kube-proxy
// splits traffic.
const endpointsPerService = 2

// kpService is Service index of the load at endpoint generation gen: each
// partial sync of the churn moves one Service to its next generation, new
// endpoint addresses and so new endpoint chains.
type kpService struct {
	index int
	gen   int
}

// portName is kube-proxy's name of the Service port, used in its comments
// and hashed into its chain names.
func (s kpService) portName() string {
	return fmt.Sprintf("busy-%d/svc-%d:http", s.index/1000, s.index)
}

// clusterIP is the Service's address: the generation does not change it.
func (s kpService) clusterIP() netip.Addr { return nthAfter(clusterIPBase(), s.index+1) }

// endpoint is the address of endpoint j: a different one in each generation.
func (s kpService) endpoint(j int) netip.Addr {
	n := (s.gen*maxServices+s.index)*endpointsPerService + j
	return nthAfter(endpointBase(), 1+n%(1<<16-2))
}

// endpointKey is what names endpoint j's chain: the generation is in it, so
// a new generation never takes the name of a chain its sync deletes, even
// where addresses wrap around.
func (s kpService) endpointKey(j int) string {
	return fmt.Sprintf("%s/tcp/%s:80#%d", s.portName(), s.endpoint(j), s.gen)
}

// nthAfter is the address n after a, within the same /16 (n < 65536).
func nthAfter(a netip.Addr, n int) netip.Addr {
	b := a.As4()
	v := (int(b[2])<<8 | int(b[3])) + n
	b[2], b[3] = byte(v>>8), byte(v)
	return netip.AddrFrom4(b)
}

// chainHash is the first n characters of the base32 SHA-256 of key, as
// kube-proxy suffixes its per-Service and per-endpoint chain names.
func chainHash(key string, n int) string {
	sum := sha256.Sum256([]byte(key))
	return base32.StdEncoding.EncodeToString(sum[:])[:n]
}

// checkServices refuses a Service count the address range cannot hold.
func checkServices(n int) error {
	if n < 1 || n > maxServices {
		return fmt.Errorf("-busy-services %d: want 1 to %d (one ClusterIP each in 198.18.0.0/16)", n, maxServices)
	}
	return nil
}
