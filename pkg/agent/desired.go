package agent

import (
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Reasons the agent cannot configure the node yet; /readyz reports them.
var (
	errNoOwnNode  = errors.New("own Node not in the informer cache")
	errNoPodCIDR  = errors.New("waiting for podCIDR")
	errNoInternal = errors.New("own Node has no InternalIP")
)

// underlay is the link holding the own Node's InternalIP of one family.
type underlay struct {
	addr      netip.Addr
	linkIndex int
	linkName  string
	mtu       int
	connected []netip.Prefix // masked prefixes of the link's addresses of the family
}

// onLink reports whether gw is reachable without a gateway on u.
func (u *underlay) onLink(gw netip.Addr) bool {
	for _, p := range u.connected {
		if p.Contains(gw) && gw != u.addr {
			return true
		}
	}
	return false
}

// route is one route the agent wants: Dst via Gw dev LinkIndex proto 78.
type route struct {
	dst       netip.Prefix
	gw        netip.Addr
	linkIndex int
	node      string
}

// skip is a peer podCIDR the agent does not route, and why.
type skip struct {
	node    string
	podCIDR netip.Prefix
	reason  string
}

func (s skip) String() string { return s.node + " " + s.podCIDR.String() + ": " + s.reason }

// input is everything the desired state is computed from.
type input struct {
	own          string
	nodes        []*corev1.Node
	clusterCIDRs []netip.Prefix // from flags; a family without one gets the covering prefix
	underlays    [2]*underlay   // by family; nil: no own InternalIP of the family, or on no link
}

// desired is the host state the agent converges to.
type desired struct {
	podCIDRs     []netip.Prefix // own, in spec order
	clusterCIDRs []netip.Prefix // IPv4 first
	routes       map[netip.Prefix]route
	peers        int // other Nodes with podCIDRs
	skipped      []skip
}

// computeDesired derives the host state from the Nodes. It fails with
// errNoOwnNode or errNoPodCIDR while the own Node cannot be configured.
func computeDesired(in input) (desired, error) {
	infos := make([]nodeInfo, 0, len(in.nodes))
	var own *nodeInfo
	for _, n := range in.nodes {
		infos = append(infos, readNode(n))
	}
	// Sorted by name so a podCIDR claimed twice goes to the same Node on every agent.
	slices.SortFunc(infos, func(a, b nodeInfo) int { return strings.Compare(a.name, b.name) })
	for i := range infos {
		if infos[i].name == in.own {
			own = &infos[i]
		}
	}
	if own == nil {
		return desired{}, errNoOwnNode
	}
	if len(own.podCIDRs) == 0 {
		return desired{}, errNoPodCIDR
	}
	d := desired{podCIDRs: own.podCIDRs, routes: make(map[netip.Prefix]route, len(infos))}
	d.clusterCIDRs = clusterCIDRs(in.clusterCIDRs, infos)
	for i := range infos {
		if p := &infos[i]; p != own && len(p.podCIDRs) > 0 {
			d.peers++
			d.addPeer(p, own.podCIDRs, in.underlays)
		}
	}
	return d, nil
}

// addPeer adds a route per podCIDR of p, or a skip saying why not.
func (d *desired) addPeer(p *nodeInfo, own []netip.Prefix, ul [2]*underlay) {
	for _, dst := range p.podCIDRs {
		f := familyOf(dst.Addr())
		gw, u := p.ips[f], ul[f]
		reason := ""
		switch {
		case !gw.IsValid():
			reason = "no " + familyName(f) + " InternalIP"
		case u == nil:
			reason = "no " + familyName(f) + " underlay on this node"
		case !u.onLink(gw):
			reason = fmt.Sprintf("InternalIP %s not on-link on %s", gw, u.linkName)
		case slices.ContainsFunc(own, dst.Overlaps):
			reason = "overlaps the own podCIDR"
		case d.routes[dst].node != "":
			reason = "podCIDR also held by " + d.routes[dst].node
		}
		if reason != "" {
			d.skipped = append(d.skipped, skip{node: p.name, podCIDR: dst, reason: reason})
			continue
		}
		d.routes[dst] = route{dst: dst, gw: gw, linkIndex: u.linkIndex, node: p.name}
	}
}

// clusterCIDRs returns the configured prefixes, and for each family without
// one, the smallest prefix covering every Node's podCIDRs of that family:
// it grows with the cluster but stays one rule per family.
func clusterCIDRs(configured []netip.Prefix, infos []nodeInfo) []netip.Prefix {
	var have, cover [2]bool
	var out, covering [2][]netip.Prefix
	for _, p := range configured {
		f := familyOf(p.Addr())
		have[f] = true
		out[f] = append(out[f], p)
	}
	for _, ni := range infos {
		for _, p := range ni.podCIDRs {
			f := familyOf(p.Addr())
			if have[f] {
				continue
			}
			if !cover[f] {
				cover[f], covering[f] = true, []netip.Prefix{p}
				continue
			}
			covering[f][0] = coveringPrefix(covering[f][0], p)
		}
	}
	return slices.Concat(out[v4], covering[v4], out[v6], covering[v6])
}

// coveringPrefix is the smallest prefix containing both a and b (same family).
func coveringPrefix(a, b netip.Prefix) netip.Prefix {
	n := min(a.Bits(), b.Bits())
	x, y := a.Addr().AsSlice(), b.Addr().AsSlice()
	common := 0
	for i := range x {
		if d := x[i] ^ y[i]; d != 0 {
			common += bits.LeadingZeros8(d)
			break
		}
		common += 8
	}
	return netip.PrefixFrom(a.Addr(), min(n, common)).Masked()
}
