package agent

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/nodebridge/nodebridge/pkg/routes"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Reasons a podCIDR is not used: short and stable, they label
// nodebridge_agent_podcidr_rejected and open the Event's rule.
const (
	rejectUnparsable        = "unparsable"
	rejectMapped            = "v4-mapped"
	rejectZeroLength        = "zero-length"
	rejectOutside           = "outside-cluster-cidr"
	rejectOverlapsOwn       = "overlaps-own"
	rejectOverlapsConnected = "overlaps-connected"
	rejectOverlapsDefault   = "overlaps-default-route"
	rejectNoInternalIP      = "no-internal-ip"
	rejectNoUnderlay        = "no-underlay"
	rejectNotOnLink         = "not-on-link"
	rejectOverlapsPeer      = "overlaps-peer"
	rejectForeignRoute      = "foreign-route"
	rejectBadRemote         = "bad-tunnel-endpoint"
	rejectMACClash          = "vtep-mac-clash"
)

// rejectReasons lists every reason, in exposition order: the metric shows
// each, at 0 when nothing is rejected for it.
func rejectReasons() []string {
	return []string{rejectUnparsable, rejectMapped, rejectZeroLength, rejectOutside, rejectOverlapsOwn,
		rejectOverlapsConnected, rejectOverlapsDefault, rejectNoInternalIP, rejectNoUnderlay, rejectNotOnLink,
		rejectOverlapsPeer, rejectForeignRoute, rejectBadRemote, rejectMACClash}
}

// checkPrefix applies the rules every podCIDR obeys, the own Node's too: a
// plain prefix of its family, not all of it, inside the cluster CIDR.
func checkPrefix(p netip.Prefix, cluster [2]netip.Prefix) (reason, detail string) {
	f := familyOf(p.Addr())
	c := cluster[f]
	switch {
	case p.Addr().Is4In6():
		return rejectMapped, "IPv4-mapped IPv6 prefix"
	case p.Bits() == 0:
		return rejectZeroLength, "zero length"
	case !c.IsValid():
		return rejectOutside, "no " + familyName(f) + " cluster CIDR"
	case c.Bits() > p.Bits() || !c.Contains(p.Addr()):
		return rejectOutside, "outside cluster CIDR " + c.String()
	}
	return "", ""
}

// checker decides whether a peer's podCIDR is routed, and how: it must
// not take traffic away from anything this node reaches otherwise, and a
// tunnel must not lead anywhere but to a peer.
type checker struct {
	cluster   [2]netip.Prefix
	own       []netip.Prefix
	host      routes.Host
	underlays [2]*routes.Underlay
	backend   string
	accepted  prefixSet                 // routed so far, older Nodes first
	tunnels   [2]*tunnelPlan            // by family, made at the first peer tunneled to
	vteps     map[string]*[2]netip.Addr // by peer: its VTEP of each family, once one of its podCIDRs is tunneled to
}

// check returns the route to dst of peer p, or why there is none; a route
// through the family's VXLAN device (Onlink) adds p to its peers.
func (c *checker) check(p *nodeInfo, dst netip.Prefix) (r routes.Route, reason, detail string) {
	if reason, detail = checkPrefix(dst, c.cluster); reason != "" {
		return r, reason, detail
	}
	if reason, detail = c.overlapsHost(dst); reason != "" {
		return r, reason, detail
	}
	f := familyOf(dst.Addr())
	gw, u := p.ips[f], c.underlays[f]
	switch {
	case !gw.IsValid():
		return r, rejectNoInternalIP, "no " + familyName(f) + " InternalIP"
	case u == nil:
		return r, rejectNoUnderlay, "no " + familyName(f) + " underlay on this node"
	}
	onLink := u.OnLink(gw)
	tunnel := c.backend == BackendVXLAN || (c.backend == BackendAuto && !onLink)
	if !tunnel && !onLink {
		return r, rejectNotOnLink, fmt.Sprintf("InternalIP %s not on-link on %s", gw, u.LinkName)
	}
	if tunnel {
		if reason, detail = c.checkRemote(p, gw); reason != "" {
			return r, reason, detail
		}
	}
	if q, holder, ok := c.accepted.overlapping(dst); ok {
		return r, rejectOverlapsPeer, fmt.Sprintf("overlaps %s of %s, created earlier", q, holder)
	}
	fr, foreign := c.host.Foreign[dst]
	if tunnel {
		if foreign { // never taken over: it cannot go through a device not made yet
			return r, rejectForeignRoute, c.describeForeign(&fr)
		}
		return routes.Route{Dst: dst, Gw: c.vtepOf(p, dst), LinkName: tunnelName(f), Onlink: true, Node: p.name}, "", ""
	}
	r = routes.Route{Dst: dst, Gw: gw, LinkIndex: u.LinkIndex, LinkName: u.LinkName, Node: p.name}
	if foreign && !routes.Takes(&fr, r) {
		return routes.Route{}, rejectForeignRoute, c.describeForeign(&fr)
	}
	return r, "", ""
}

// checkRemote checks a peer's InternalIP as the outer destination of
// tunnel packets: a unicast address outside the pod network, not this
// node's, whose derived MAC no other peer has.
func (c *checker) checkRemote(p *nodeInfo, ip netip.Addr) (reason, detail string) {
	if !ip.IsGlobalUnicast() {
		return rejectBadRemote, fmt.Sprintf("InternalIP %s is not a unicast address to tunnel to", ip)
	}
	for _, cl := range c.cluster {
		if cl.IsValid() && cl.Contains(ip) {
			return rejectBadRemote, fmt.Sprintf("InternalIP %s is inside cluster CIDR %s", ip, cl)
		}
	}
	for _, a := range c.host.Addrs {
		if a.Prefix.Addr() == ip {
			return rejectBadRemote, fmt.Sprintf("InternalIP %s is an address of this node (on %s)", ip, a.LinkName)
		}
	}
	t := c.tunnel(familyOf(ip))
	mac := routes.VTEPMAC(ip).String()
	if holder, ok := t.macs[mac]; ok && holder.node != p.name {
		return rejectMACClash, fmt.Sprintf("VTEP MAC %s of InternalIP %s is that of %s (InternalIP %s), created earlier", mac, ip, holder.node, holder.ip)
	}
	return "", ""
}

// vtepOf returns p's VTEP address of dst's family, the first address of
// the first of its podCIDRs of the family tunneled to, and adds p to the
// family's tunnel when dst is that podCIDR.
func (c *checker) vtepOf(p *nodeInfo, dst netip.Prefix) netip.Addr {
	f := familyOf(dst.Addr())
	v := c.vteps[p.name]
	if v == nil {
		v = new([2]netip.Addr)
		c.vteps[p.name] = v
	}
	if !v[f].IsValid() {
		v[f] = dst.Addr()
		remote := p.ips[f]
		t := c.tunnel(f)
		t.peers = append(t.peers, routes.Peer{Node: p.name, VTEP: v[f], MAC: routes.VTEPMAC(remote), Remote: remote})
		t.macs[routes.VTEPMAC(remote).String()] = macHolder{node: p.name, ip: remote}
	}
	return v[f]
}

// tunnel returns the family's tunnel plan, made empty on first use.
func (c *checker) tunnel(f int) *tunnelPlan {
	if c.tunnels[f] == nil {
		c.tunnels[f] = &tunnelPlan{macs: map[string]macHolder{}}
	}
	return c.tunnels[f]
}

// describeForeign says where another protocol's route goes, for the log
// and the Event: the operator removes it, or lets it stay.
func (c *checker) describeForeign(f *netlink.Route) string {
	via := ""
	if f.Gw != nil {
		via = " via " + f.Gw.String()
	}
	dev := fmt.Sprintf("#%d", f.LinkIndex)
	for _, a := range c.host.Addrs {
		if a.LinkIndex == f.LinkIndex {
			dev = a.LinkName
		}
	}
	if len(f.MultiPath) > 0 {
		dev = "multipath"
	}
	kind := ""
	if f.Type != unix.RTN_UNICAST {
		kind = fmt.Sprintf(" of type %d", f.Type)
	}
	return fmt.Sprintf("a route%s of another protocol (proto %s)%s dev %s holds the destination", kind, f.Protocol, via, dev)
}

// overlapsHost checks dst against the own podCIDRs, every prefix connected
// on the node, and the default routes' gateways.
func (c *checker) overlapsHost(dst netip.Prefix) (reason, detail string) {
	for _, o := range c.own {
		if o.Overlaps(dst) {
			return rejectOverlapsOwn, "overlaps own podCIDR " + o.String()
		}
	}
	for _, a := range c.host.Addrs {
		if m := a.Prefix.Masked(); m.Overlaps(dst) {
			return rejectOverlapsConnected, fmt.Sprintf("overlaps %s connected on %s", m, a.LinkName)
		}
	}
	for _, gw := range c.host.Gateways {
		if dst.Contains(gw) {
			return rejectOverlapsDefault, fmt.Sprintf("contains %s, gateway of a default route", gw)
		}
	}
	return "", ""
}

// prefixSet holds disjoint prefixes sorted by address, so whether a new
// prefix overlaps one is a look at its two neighbours, not at every member:
// a thousand peers stay a thousand binary searches.
type prefixSet struct {
	prefixes []netip.Prefix
	holders  []string
}

// search returns where p's address is or would be.
func (s *prefixSet) search(p netip.Prefix) (int, bool) {
	return slices.BinarySearchFunc(s.prefixes, p.Addr(), func(q netip.Prefix, a netip.Addr) int {
		return q.Addr().Compare(a)
	})
}

// overlapping returns the member overlapping p, and its holder. Only the
// member starting last before p can contain p's start, and only the first
// one after can start inside p.
func (s *prefixSet) overlapping(p netip.Prefix) (netip.Prefix, string, bool) {
	i, found := s.search(p)
	if found {
		return s.prefixes[i], s.holders[i], true
	}
	for _, j := range []int{i - 1, i} {
		if j >= 0 && j < len(s.prefixes) && s.prefixes[j].Overlaps(p) {
			return s.prefixes[j], s.holders[j], true
		}
	}
	return netip.Prefix{}, "", false
}

// add inserts p, which overlaps no member.
func (s *prefixSet) add(p netip.Prefix, holder string) {
	i, _ := s.search(p)
	s.prefixes = slices.Insert(s.prefixes, i, p)
	s.holders = slices.Insert(s.holders, i, holder)
}
