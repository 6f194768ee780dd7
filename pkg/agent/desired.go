package agent

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/nodebridge/nodebridge/pkg/routes"
	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Reasons the agent cannot configure the node yet; /readyz reports them.
var (
	errNoOwnNode  = errors.New("own Node not in the informer cache")
	errNoPodCIDR  = errors.New("waiting for podCIDR")
	errNoInternal = errors.New("own Node has no InternalIP")
	errOwnPodCIDR = errors.New("own podCIDR rejected")
)

// skip is a podCIDR the agent does not use, and why: a peer's it does not
// route, or the own Node's it will not configure the node with.
type skip struct {
	node    string
	uid     types.UID
	own     bool   // the own Node's podCIDR
	podCIDR string // as the Node spells it
	reason  string // a reject* constant: the metric label
	detail  string // the rule broken, for the log and the Event
}

func (s skip) String() string { return s.node + " " + s.podCIDR + ": " + s.reason + ": " + s.detail }

// input is everything the desired state is computed from.
type input struct {
	own          string
	nodes        []*corev1.Node
	clusterCIDRs []netip.Prefix      // known and checked (checkClusterCIDRs)
	underlays    [2]*routes.Underlay // by family; nil: no own InternalIP of the family, or on no link
	host         routes.Host         // the node's addresses and default gateways
	backend      string              // Config.Backend
}

// desired is the host state the agent converges to.
type desired struct {
	podCIDRs     []netip.Prefix // own, in spec order
	clusterCIDRs []netip.Prefix // IPv4 first
	routes       map[netip.Prefix]routes.Route
	takeover     []netlink.Route // other protocols' routes to wanted destinations, going the same way: replaced by ours
	peers        int             // other Nodes with podCIDRs
	skipped      []skip          // the own Node's when the error is errOwnPodCIDR, else the peers'
	// tunnels holds, by family, the VXLAN device's peers; nil: no device
	// of the family. The routes through one have Onlink set and no
	// LinkIndex until the device exists (applyTunnels).
	tunnels [2]*tunnelPlan
}

// unreachable is the peers' podCIDRs not routed for want of an on-link
// InternalIP: with --backend=host-gw, pods there cannot be reached.
func (d *desired) unreachable() []skip {
	var out []skip
	for _, s := range d.skipped {
		if s.reason == rejectNotOnLink {
			out = append(out, s)
		}
	}
	return out
}

// tunnelPlan is what one family's VXLAN device must hold.
type tunnelPlan struct {
	vtep  netip.Addr // own VTEP: the first address of the own podCIDR of the family; invalid: none
	peers []routes.Peer
	macs  map[string]macHolder // VTEP MAC to the peer deriving it
}

// macHolder is the peer a VTEP MAC was derived for.
type macHolder struct {
	node string
	ip   netip.Addr
}

// tunnelName is the VXLAN device of family f.
func tunnelName(f int) string {
	if f == v4 {
		return TunnelV4
	}
	return TunnelV6
}

// computeDesired derives the host state from the Nodes. It fails with
// errNoOwnNode or errNoPodCIDR while the own Node cannot be configured, and
// with errOwnPodCIDR, the rejections in skipped, when one of its podCIDRs
// must not be used.
func computeDesired(in input) (desired, error) {
	infos := make([]nodeInfo, 0, len(in.nodes))
	var own *nodeInfo
	for _, n := range in.nodes {
		infos = append(infos, readNode(n))
	}
	// Oldest first, so a contested podCIDR goes to the same Node on every
	// agent whatever the names: the Node that had it first.
	slices.SortFunc(infos, func(a, b nodeInfo) int {
		return cmp.Or(a.created.Compare(b.created), strings.Compare(a.name, b.name))
	})
	for i := range infos {
		if infos[i].name == in.own {
			own = &infos[i]
		}
	}
	if own == nil {
		return desired{}, errNoOwnNode
	}
	cluster := byFamily(in.clusterCIDRs)
	if skips := checkOwn(own, cluster); len(skips) > 0 {
		return desired{skipped: skips}, ownError(skips)
	}
	if len(own.podCIDRs) == 0 {
		return desired{}, errNoPodCIDR
	}
	d := desired{podCIDRs: own.podCIDRs, clusterCIDRs: slices.DeleteFunc(cluster[:], isZero),
		routes: make(map[netip.Prefix]routes.Route, len(infos))}
	c := &checker{cluster: cluster, own: own.podCIDRs, host: in.host, underlays: in.underlays,
		backend: in.backend, vteps: map[string]*[2]netip.Addr{}}
	for i := range infos {
		if p := &infos[i]; p != own && len(p.podCIDRs)+len(p.bad) > 0 {
			d.peers++
			d.addPeer(c, p)
		}
	}
	d.tunnels = c.tunnels
	for f, u := range in.underlays {
		if in.backend == BackendVXLAN && u != nil && d.tunnels[f] == nil {
			d.tunnels[f] = &tunnelPlan{} // a device with no peer yet
		}
		if t := d.tunnels[f]; t != nil {
			t.vtep = ownVTEP(own.podCIDRs, f)
		}
	}
	return d, nil
}

// ownVTEP is the first address of the first own podCIDR of family f.
func ownVTEP(own []netip.Prefix, f int) netip.Addr {
	for _, p := range own {
		if familyOf(p.Addr()) == f {
			return p.Addr()
		}
	}
	return netip.Addr{}
}

func isZero(p netip.Prefix) bool { return !p.IsValid() }

// byFamily returns the first usable cluster CIDR of each family.
func byFamily(cidrs []netip.Prefix) [2]netip.Prefix {
	var out [2]netip.Prefix
	for _, p := range cidrs {
		if f := familyOf(p.Addr()); !out[f].IsValid() && p.Bits() > 0 && !p.Addr().Is4In6() {
			out[f] = p.Masked()
		}
	}
	return out
}

// addPeer adds a route per podCIDR of p, or a skip saying why not.
func (d *desired) addPeer(c *checker, p *nodeInfo) {
	for _, s := range p.bad {
		d.skipped = append(d.skipped, skip{node: p.name, uid: p.uid, podCIDR: s, reason: rejectUnparsable, detail: "not a CIDR"})
	}
	for _, dst := range p.podCIDRs {
		r, reason, detail := c.check(p, dst)
		if reason != "" {
			d.skipped = append(d.skipped, skip{node: p.name, uid: p.uid, podCIDR: dst.String(), reason: reason, detail: detail})
			continue
		}
		c.accepted.add(dst, p.name)
		d.routes[dst] = r
		if f, ok := c.host.Foreign[dst]; ok {
			d.takeover = append(d.takeover, f)
		}
	}
}

// checkOwn returns the rejections of the own Node's podCIDRs: each must be
// a plain prefix inside the cluster CIDR of its family.
func checkOwn(own *nodeInfo, cluster [2]netip.Prefix) []skip {
	var out []skip
	for _, s := range own.bad {
		out = append(out, skip{node: own.name, uid: own.uid, own: true, podCIDR: s, reason: rejectUnparsable, detail: "not a CIDR"})
	}
	for _, p := range own.podCIDRs {
		if reason, detail := checkPrefix(p, cluster); reason != "" {
			out = append(out, skip{node: own.name, uid: own.uid, own: true, podCIDR: p.String(), reason: reason, detail: detail})
		}
	}
	return out
}

// ownError is the readiness reason for the own Node's rejected podCIDRs.
func ownError(skips []skip) error {
	parts := make([]string, len(skips))
	for i, s := range skips {
		parts[i] = s.podCIDR + ": " + s.detail
	}
	return fmt.Errorf("%w: %s", errOwnPodCIDR, strings.Join(parts, "; "))
}
