package ipam

import (
	"math"
	"net/netip"
	"strconv"
)

// Bounds of the route attributes: the kernel takes priority and table as
// 32-bit numbers and scope as 8 bits, and silently lowers a larger MTU or
// advertised MSS to these.
const (
	maxRouteMTU    = 65535 - 15
	maxRouteAdvMSS = 65535 - 40
	minMTUv4       = 68
	minMTUv6       = 1280
	scopeLink      = 253
	scopeNowhere   = 255
)

// parseRoute validates one ipam.routes entry; path ends with ".". sets
// are the pool's range sets: a route without gw goes via the gateway of
// its family's set, when there is one.
func parseRoute(path string, rc RouteConfig, sets []RangeSet) (Route, []error) {
	dst, err := netip.ParsePrefix(rc.Dst)
	if err != nil {
		return Route{}, []error{invalid(path+"dst", rc.Dst, "not a CIDR")}
	}
	rt := Route{Dst: dst.Masked(), MTU: rc.MTU, AdvMSS: rc.AdvMSS, Priority: rc.Priority, Table: rc.Table, Scope: rc.Scope}
	var errs []error
	if rc.GW != "" {
		gw, err := netip.ParseAddr(rc.GW)
		rt.GW = gw.Unmap()
		switch {
		case err != nil || gw.Zone() != "":
			errs = append(errs, invalid(path+"gw", rc.GW, "not an IP"))
		case rt.GW.BitLen() != dst.Addr().BitLen():
			errs = append(errs, invalid(path+"gw", rc.GW, "address family differs from dst %s", rt.Dst))
		}
	}
	errs = append(errs, routeNumbers(path, rt)...)
	if err := routeScope(path, rt, sets); err != nil {
		errs = append(errs, err)
	}
	return rt, errs
}

// routeNumbers checks mtu, advmss, priority and table against what the
// kernel stores unchanged.
func routeNumbers(path string, rt Route) []error {
	var errs []error
	minMTU := minMTUv4
	if !rt.Dst.Addr().Is4() {
		minMTU = minMTUv6
	}
	if rt.MTU != 0 && (rt.MTU < minMTU || rt.MTU > maxRouteMTU) {
		errs = append(errs, invalid(path+"mtu", strconv.Itoa(rt.MTU), "not 0 (unset) or %d-%d", minMTU, maxRouteMTU))
	}
	if rt.AdvMSS < 0 || rt.AdvMSS > maxRouteAdvMSS {
		errs = append(errs, invalid(path+"advmss", strconv.Itoa(rt.AdvMSS), "not 0 (unset) or 1-%d", maxRouteAdvMSS))
	}
	if rt.Priority < 0 || int64(rt.Priority) > math.MaxUint32 {
		errs = append(errs, invalid(path+"priority", strconv.Itoa(rt.Priority), "not 0-%d", uint32(math.MaxUint32)))
	}
	if rt.Table != nil && (*rt.Table < 0 || int64(*rt.Table) > math.MaxUint32) {
		errs = append(errs, invalid(path+"table", strconv.Itoa(*rt.Table), "not 0-%d", uint32(math.MaxUint32)))
	}
	return errs
}

// routeScope checks scope: a number of 8 bits, on an IPv4 route (the
// kernel keeps every IPv6 route at scope universe, whatever it is told),
// not nowhere, and not link or host for a route via a gateway, which the
// kernel refuses.
func routeScope(path string, rt Route, sets []RangeSet) error {
	if rt.Scope == nil {
		return nil
	}
	s := *rt.Scope
	v := strconv.Itoa(s)
	switch {
	case s < 0 || s > scopeNowhere:
		return invalid(path+"scope", v, "not 0-%d", scopeNowhere)
	case s != 0 && !rt.Dst.Addr().Is4():
		return unsupported(path+"scope", v, "the kernel gives every IPv6 route scope 0 (universe)")
	case s == scopeNowhere:
		return unsupported(path+"scope", v, "the kernel adds no route of scope nowhere")
	case s >= scopeLink && rt.GW.IsValid():
		return unsupported(path+"scope", v, "the kernel adds no route of scope link or host via a gateway (gw %s)", rt.GW)
	case s >= scopeLink && familyGateway(sets, true).IsValid():
		return unsupported(path+"scope", v, "the kernel adds no route of scope link or host via a gateway (the IPv4 gateway %s)", familyGateway(sets, true))
	}
	return nil
}

// familyGateway is the gateway of the first set of the family, which a
// route without gw goes via, or the zero Addr.
func familyGateway(sets []RangeSet, v4 bool) netip.Addr {
	for _, set := range sets {
		if len(set) > 0 && set[0].Subnet.Addr().Is4() == v4 && set[0].Gateway.IsValid() {
			return set[0].Gateway
		}
	}
	return netip.Addr{}
}
