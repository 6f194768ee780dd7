package ipam

import (
	"fmt"
	"net/netip"
	"strings"
)

// parseRange validates one range; path is its JSON path prefix, e.g.
// "ipam.ranges[0][1]." or "ipam." for the legacy top-level range.
func parseRange(path string, rc RangeConfig) (Range, []error) {
	var r Range
	if rc.Subnet == "" {
		return r, []error{invalid(path+"subnet", "", "required")}
	}
	pfx, err := netip.ParsePrefix(rc.Subnet)
	switch {
	case err != nil:
		return r, []error{invalid(path+"subnet", rc.Subnet, "not a CIDR")}
	case pfx.Addr().Is4In6():
		return r, []error{invalid(path+"subnet", rc.Subnet, "IPv4-mapped; write it as an IPv4 CIDR")}
	case pfx.Addr().BitLen()-pfx.Bits() < 2:
		// As the reference: a /31 or /32 (/127, /128) leaves no host to hand out.
		return r, []error{invalid(path+"subnet", rc.Subnet, "too small to allocate from")}
	}
	r.Subnet = pfx.Masked()
	var errs []error
	field := func(name, value string, def netip.Addr) netip.Addr {
		a, err := r.parseAddr(path+name, value, def)
		if err != nil {
			errs = append(errs, err)
		}
		return a
	}
	r.Gateway = field("gateway", rc.Gateway, r.Subnet.Addr().Next())
	r.Start = field("rangeStart", rc.RangeStart, r.Subnet.Addr().Next())
	r.End = field("rangeEnd", rc.RangeEnd, r.lastHost())
	if len(errs) > 0 {
		return r, errs
	}
	return r, r.checkBounds(path, rc)
}

// parseAddr parses value as an address inside r.Subnet, or returns def when
// value is empty.
func (r Range) parseAddr(path, value string, def netip.Addr) (netip.Addr, error) {
	if value == "" {
		return def, nil
	}
	a, err := netip.ParseAddr(value)
	if err != nil || a.Zone() != "" {
		return a, invalid(path, value, "not an IP")
	}
	a = a.Unmap() // the reference stores ::ffff:a.b.c.d as a.b.c.d
	if !r.Subnet.Contains(a) {
		return a, invalid(path, value, "outside subnet %s", r.Subnet)
	}
	return a, nil
}

// checkBounds rejects a span that is reversed or would hand out the
// network or (IPv4) broadcast address.
func (r Range) checkBounds(path string, rc RangeConfig) []error {
	var errs []error
	if r.Start.Compare(r.End) > 0 {
		errs = append(errs, invalid(path+"rangeStart", r.Start.String(), "after rangeEnd %s", r.End))
	}
	if r.Start == r.Subnet.Addr() {
		errs = append(errs, invalid(path+"rangeStart", rc.RangeStart, "the network address of %s", r.Subnet))
	}
	if r.Subnet.Addr().Is4() && r.End == lastAddr(r.Subnet) {
		errs = append(errs, invalid(path+"rangeEnd", rc.RangeEnd, "the broadcast address of %s", r.Subnet))
	}
	return errs
}

// lastHost is the default rangeEnd: the last address of the subnet, less
// the broadcast address for IPv4.
func (r Range) lastHost() netip.Addr {
	last := lastAddr(r.Subnet)
	if last.Is4() {
		return last.Prev()
	}
	return last
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := range b {
		netBits := min(max(p.Bits()-8*i, 0), 8)
		b[i] |= byte(0xff >> netBits)
	}
	a, _ := netip.AddrFromSlice(b) // b came from an Addr: always 4 or 16 bytes
	return a
}

// contains reports whether a lies in the span Start..End.
func (r Range) contains(a netip.Addr) bool {
	return a.BitLen() == r.Start.BitLen() && r.Start.Compare(a) <= 0 && a.Compare(r.End) <= 0
}

// overlaps reports whether the spans of r and o share an address.
func (r Range) overlaps(o Range) bool {
	return r.contains(o.Start) || o.contains(r.Start)
}

// rangeFor returns the index of the range of s holding a, or -1.
func (s RangeSet) rangeFor(a netip.Addr) int {
	for i, r := range s {
		if r.contains(a) {
			return i
		}
	}
	return -1
}

// String lists the subnets of s, e.g. "10.0.0.0/24,10.0.1.0/24".
func (s RangeSet) String() string {
	subnets := make([]string, len(s))
	for i, r := range s {
		subnets[i] = r.Subnet.String()
	}
	return strings.Join(subnets, ",")
}

// ParseRequested parses a requested address as the requested-IP sources give
// it ("10.0.0.5" or "10.0.0.5/24"); only the address part is used.
func ParseRequested(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if strings.Contains(s, "/") {
		var p netip.Prefix
		p, err = netip.ParsePrefix(s)
		a = p.Addr()
	}
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, invalid("requested address", s, "not an IP")
	}
	return a.Unmap(), nil
}

// String formats r as start-end, for messages.
func (r Range) String() string { return fmt.Sprintf("%s-%s", r.Start, r.End) }
