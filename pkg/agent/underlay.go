package agent

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/nodebridge/nodebridge/pkg/routes"
)

// underlaysOf finds, for each family with an InternalIP, the link holding
// that address: peer routes leave through it and its MTU goes into the
// conflist. A family whose address is on no link (IPv6 addresses go when a
// link goes down) is nil in the result and named in the error, so the other
// family still gets its routes.
func underlaysOf(ips [2]netip.Addr, addrs []routes.Addr) ([2]*routes.Underlay, error) {
	var out [2]*routes.Underlay
	if !ips[v4].IsValid() && !ips[v6].IsValid() {
		return out, errNoInternal
	}
	var errs []error
	for f, ip := range ips {
		if !ip.IsValid() {
			continue
		}
		out[f] = routes.UnderlayOf(ip, addrs)
		if out[f] == nil {
			errs = append(errs, fmt.Errorf("find the link of InternalIP %s: no link holds it", ip))
		}
	}
	return out, errors.Join(errs...)
}

// podMTU is the MTU for pods: the smallest of the underlay links', less
// the VXLAN overhead of the link's family unless the backend is host-gw
// (with auto, any pod may talk to a peer through the tunnel once an
// off-link Node joins, and a pod keeps its MTU for life).
func podMTU(backend string, ul [2]*routes.Underlay) int {
	mtu := 0
	for f, u := range ul {
		if u == nil {
			continue
		}
		m := u.MTU
		if backend != BackendHostGW {
			m -= routes.Overhead(f == v6)
		}
		if mtu == 0 || m < mtu {
			mtu = m
		}
	}
	return mtu
}

// linkIndex is the index of u's link; 0 without an underlay.
func linkIndex(u *routes.Underlay) int {
	if u == nil {
		return 0
	}
	return u.LinkIndex
}
