package agent

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// findUnderlays finds, for each family with an InternalIP, the link holding
// that address: peer routes leave through it and its MTU goes into the
// conflist. A family whose address is on no link (IPv6 addresses go when a
// link goes down) is nil in the result and named in the error, so the other
// family still gets its routes. Equivalent to: ip -o addr show to IP
func findUnderlays(h *netlink.Handle, ips [2]netip.Addr) ([2]*underlay, error) {
	var out [2]*underlay
	if !ips[v4].IsValid() && !ips[v6].IsValid() {
		return out, errNoInternal
	}
	var errs []error
	for f, fam := range [2]int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		if !ips[f].IsValid() {
			continue
		}
		addrs, err := h.AddrList(nil, fam)
		if err != nil {
			errs = append(errs, fmt.Errorf("list %s addresses: %w", familyName(f), err))
			continue
		}
		u, err := underlayOf(h, ips[f], addrs)
		errs = append(errs, err)
		out[f] = u
	}
	return out, errors.Join(errs...)
}

// underlayOf builds the underlay of ip from the family's addresses.
func underlayOf(h *netlink.Handle, ip netip.Addr, addrs []netlink.Addr) (*underlay, error) {
	index := 0
	for _, a := range addrs {
		if x, ok := netip.AddrFromSlice(a.IP); ok && x.Unmap() == ip {
			index = a.LinkIndex
			break
		}
	}
	if index == 0 {
		return nil, fmt.Errorf("find the link of InternalIP %s: no link holds it", ip)
	}
	link, err := h.LinkByIndex(index)
	if err != nil {
		return nil, fmt.Errorf("read link #%d holding InternalIP %s: %w", index, ip, err)
	}
	u := &underlay{addr: ip, linkIndex: index, linkName: link.Attrs().Name, mtu: link.Attrs().MTU}
	for _, a := range addrs {
		if a.LinkIndex != index || a.IPNet == nil {
			continue
		}
		x, ok := netip.AddrFromSlice(a.IP)
		ones, _ := a.Mask.Size()
		if ok {
			u.connected = append(u.connected, netip.PrefixFrom(x.Unmap(), ones).Masked())
		}
	}
	return u, nil
}

// underlayMTU is the MTU for pods: the smaller of the underlay links'.
func underlayMTU(ul [2]*underlay) int {
	mtu := 0
	for _, u := range ul {
		if u != nil && (mtu == 0 || u.mtu < mtu) {
			mtu = u.mtu
		}
	}
	return mtu
}
