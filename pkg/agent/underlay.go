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

// underlayMTU is the MTU for pods: the smaller of the underlay links'.
func underlayMTU(ul [2]*routes.Underlay) int {
	mtu := 0
	for _, u := range ul {
		if u != nil && (mtu == 0 || u.MTU < mtu) {
			mtu = u.MTU
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
