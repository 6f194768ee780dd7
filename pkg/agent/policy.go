package agent

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/nodebridge/nodebridge/pkg/rules"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// policyInput is what NetworkPolicy enforcement on a node is computed
// from: the node's name, every pod (peers may run anywhere), every
// namespace (for namespaceSelector) and every policy.
type policyInput struct {
	node       string
	pods       []*corev1.Pod
	namespaces []*corev1.Namespace
	policies   []*networkingv1.NetworkPolicy
}

// policyProblem is a part of a policy the agent cannot read, and what it
// did instead: always the stricter reading.
type policyProblem struct {
	namespace, name string
	uid             types.UID
	detail          string
}

func (p policyProblem) String() string { return p.namespace + "/" + p.name + ": " + p.detail }

// podInfo is what policy needs of a pod.
type podInfo struct {
	namespace string
	labels    labels.Set
	ips       []netip.Addr
	local     bool // runs on this node
	ports     []corev1.ContainerPort
}

// peer is a set of addresses a rule allows: a pod's address (pod set) or
// a prefix of an ipBlock, or everything of a family (pod nil).
type peer struct {
	prefix netip.Prefix
	pod    *podInfo
}

// policyCompiler holds the input, indexed.
type policyCompiler struct {
	pods     []*podInfo
	nsLabels map[string]labels.Set
	problems []policyProblem
}

// compilePolicy computes, upstream's semantics exactly, which of the
// node's pods each policy isolates and what traffic they may then send or
// receive: a pod is isolated in a direction when a policy selecting it
// has that type, and then only the union of those policies' rules lets
// traffic through. It never fails: what cannot be read is read strictly
// and reported.
func compilePolicy(in policyInput) (rules.Policy, []policyProblem) {
	c := &policyCompiler{nsLabels: map[string]labels.Set{}}
	for _, ns := range in.namespaces {
		c.nsLabels[ns.Name] = labels.Set(ns.Labels)
	}
	for _, p := range in.pods {
		if pi := readPod(p, in.node); pi != nil {
			c.pods = append(c.pods, pi)
		}
	}
	var out rules.Policy
	for _, pol := range in.policies {
		c.apply(&out, pol)
	}
	out.Normalize()
	sortProblems(c.problems)
	return out, c.problems
}

// readPod extracts what policy needs; nil for a pod policy does not see:
// host-network, without an address yet, or finished.
func readPod(p *corev1.Pod, node string) *podInfo {
	if p.Spec.HostNetwork || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return nil
	}
	pi := &podInfo{namespace: p.Namespace, labels: labels.Set(p.Labels), local: p.Spec.NodeName == node}
	for _, a := range p.Status.PodIPs {
		if ip, err := netip.ParseAddr(a.IP); err == nil && !ip.Is4In6() {
			pi.ips = append(pi.ips, ip)
		}
	}
	if len(pi.ips) == 0 {
		return nil
	}
	for _, ctr := range p.Spec.Containers {
		pi.ports = append(pi.ports, ctr.Ports...)
	}
	return pi
}

// policyTypes are the directions pol isolates: its policyTypes, or by
// default Ingress, and Egress when it has egress rules.
func policyTypes(pol *networkingv1.NetworkPolicy) []rules.Direction {
	if len(pol.Spec.PolicyTypes) == 0 {
		if len(pol.Spec.Egress) > 0 {
			return []rules.Direction{rules.Ingress, rules.Egress}
		}
		return []rules.Direction{rules.Ingress}
	}
	var out []rules.Direction
	for _, t := range pol.Spec.PolicyTypes {
		switch t {
		case networkingv1.PolicyTypeIngress:
			out = append(out, rules.Ingress)
		case networkingv1.PolicyTypeEgress:
			out = append(out, rules.Egress)
		}
	}
	return out
}

// apply adds what pol isolates and allows for the node's pods.
func (c *policyCompiler) apply(out *rules.Policy, pol *networkingv1.NetworkPolicy) {
	sel, err := metav1.LabelSelectorAsSelector(&pol.Spec.PodSelector)
	if err != nil {
		// Whom it meant cannot be known: it isolates the whole namespace.
		c.problem(pol, fmt.Sprintf("podSelector: %v: applied to every pod of the namespace", err))
		sel = labels.Everything()
	}
	var selected []*podInfo
	for _, p := range c.pods {
		if p.local && p.namespace == pol.Namespace && sel.Matches(p.labels) {
			selected = append(selected, p)
		}
	}
	if len(selected) == 0 {
		return
	}
	var ips []netip.Addr
	for _, p := range selected {
		ips = append(ips, p.ips...)
	}
	for _, d := range policyTypes(pol) {
		out.Isolated[d] = append(out.Isolated[d], ips...)
		if d == rules.Ingress {
			for _, r := range pol.Spec.Ingress {
				out.Rules[d] = append(out.Rules[d], c.rule(pol, d, selected, r.From, r.Ports)...)
			}
			continue
		}
		for _, r := range pol.Spec.Egress {
			out.Rules[d] = append(out.Rules[d], c.rule(pol, d, selected, r.To, r.Ports)...)
		}
	}
}

// rule is what one ingress or egress rule allows the selected pods: one
// Rule for its numeric ports (or for every port when it names none), and
// one per number a named port resolves to.
func (c *policyCompiler) rule(pol *networkingv1.NetworkPolicy, d rules.Direction, selected []*podInfo,
	peersSpec []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort) []rules.Rule {
	peers := c.peers(pol, peersSpec)
	numeric := rules.Rule{}
	for _, p := range selected {
		numeric.Pods = append(numeric.Pods, p.ips...)
	}
	for _, p := range peers {
		numeric.Peers = append(numeric.Peers, p.prefix)
	}
	if len(ports) == 0 {
		return []rules.Rule{numeric} // every protocol and port
	}
	var out []rules.Rule
	for _, port := range ports {
		proto, ok := protocolOf(port.Protocol)
		if !ok {
			c.problem(pol, fmt.Sprintf("protocol %q: not TCP, UDP or SCTP: matches nothing", *port.Protocol))
			continue
		}
		if port.Port != nil && port.Port.Type == intstr.String {
			out = append(out, c.namedPort(d, selected, peers, port.Port.StrVal, proto)...)
			continue
		}
		lo, hi, ok := portRange(port)
		if !ok {
			c.problem(pol, fmt.Sprintf("port %v endPort %v: not a range of 1..65535: matches nothing", port.Port, ptrValue(port.EndPort)))
			continue
		}
		if port.Protocol == nil && port.Port == nil {
			proto = 0 // an entry naming nothing: every protocol
		}
		numeric.Ports = append(numeric.Ports, rules.Port{Proto: proto, Lo: lo, Hi: hi})
	}
	if len(numeric.Ports) > 0 {
		out = append(out, numeric)
	}
	return out
}

// namedPort is a named port's Rules, one per number it resolves to. The
// name is looked up in the pod the traffic goes to: the selected pod for
// ingress, the peer pod for egress (a peer that is not a pod, an ipBlock
// or everything, then counts through the pods inside it that have the
// port). A pod without the port is allowed nothing by it.
func (c *policyCompiler) namedPort(d rules.Direction, selected []*podInfo, peers []peer, name string, proto uint8) []rules.Rule {
	byPort := map[uint16]*rules.Rule{}
	at := func(n uint16) *rules.Rule {
		if byPort[n] == nil {
			byPort[n] = &rules.Rule{Ports: []rules.Port{{Proto: proto, Lo: n, Hi: n}}}
		}
		return byPort[n]
	}
	if d == rules.Ingress {
		for _, local := range selected {
			if n, ok := namedPortOf(local, name, proto); ok {
				r := at(n)
				r.Pods = append(r.Pods, local.ips...)
			}
		}
		for _, r := range byPort {
			for _, p := range peers {
				r.Peers = append(r.Peers, p.prefix)
			}
		}
	} else {
		for _, p := range peers {
			for _, dst := range c.podsIn(p) {
				n, ok := namedPortOf(dst, name, proto)
				if !ok {
					continue
				}
				r := at(n)
				for _, dip := range dst.ips {
					if p.prefix.Contains(dip) {
						r.Peers = append(r.Peers, netip.PrefixFrom(dip, dip.BitLen()))
					}
				}
			}
		}
		for _, r := range byPort {
			for _, local := range selected {
				r.Pods = append(r.Pods, local.ips...)
			}
		}
	}
	var out []rules.Rule
	for _, n := range slices.Sorted(maps.Keys(byPort)) {
		out = append(out, *byPort[n])
	}
	return out
}

// peers reads a rule's from or to: empty means everything, in both
// families; otherwise the union of its peers.
func (c *policyCompiler) peers(pol *networkingv1.NetworkPolicy, spec []networkingv1.NetworkPolicyPeer) []peer {
	if len(spec) == 0 {
		return []peer{{prefix: netip.PrefixFrom(netip.IPv4Unspecified(), 0)}, {prefix: netip.PrefixFrom(netip.IPv6Unspecified(), 0)}}
	}
	var out []peer
	for i, s := range spec {
		switch {
		case s.IPBlock != nil:
			out = append(out, c.ipBlock(pol, i, s.IPBlock)...)
		case s.PodSelector != nil || s.NamespaceSelector != nil:
			out = append(out, c.selectPods(pol, i, s)...)
		default:
			c.problem(pol, fmt.Sprintf("peer %d: no selector and no ipBlock: matches nothing", i))
		}
	}
	return out
}

// selectPods returns the pods a peer's selectors pick: podSelector alone
// in the policy's namespace, namespaceSelector alone every pod of the
// matching namespaces, both the matching pods of those namespaces. A
// selector that does not parse matches nothing.
func (c *policyCompiler) selectPods(pol *networkingv1.NetworkPolicy, i int, s networkingv1.NetworkPolicyPeer) []peer {
	podSel, nsSel := labels.Everything(), labels.Nothing()
	var err error
	if s.PodSelector != nil {
		if podSel, err = metav1.LabelSelectorAsSelector(s.PodSelector); err != nil {
			c.problem(pol, fmt.Sprintf("peer %d podSelector: %v: matches nothing", i, err))
			return nil
		}
	}
	if s.NamespaceSelector != nil {
		if nsSel, err = metav1.LabelSelectorAsSelector(s.NamespaceSelector); err != nil {
			c.problem(pol, fmt.Sprintf("peer %d namespaceSelector: %v: matches nothing", i, err))
			return nil
		}
	}
	var out []peer
	for _, p := range c.pods {
		inNS := p.namespace == pol.Namespace
		if s.NamespaceSelector != nil {
			inNS = nsSel.Matches(c.namespaceLabels(p.namespace))
		}
		if !inNS || !podSel.Matches(p.labels) {
			continue
		}
		for _, ip := range p.ips {
			out = append(out, peer{prefix: netip.PrefixFrom(ip, ip.BitLen()), pod: p})
		}
	}
	return out
}

// namespaceLabels are a namespace's labels; one not seen yet has the
// label every namespace gets, its name.
func (c *policyCompiler) namespaceLabels(ns string) labels.Set {
	if l, ok := c.nsLabels[ns]; ok {
		return l
	}
	return labels.Set{corev1.LabelMetadataName: ns}
}

// ipBlock returns an ipBlock's CIDR less its excepts, as prefixes. A CIDR
// that does not parse matches nothing, and so does the block when an
// except does not parse (the stricter reading); both are reported.
func (c *policyCompiler) ipBlock(pol *networkingv1.NetworkPolicy, i int, b *networkingv1.IPBlock) []peer {
	cidr, err := netip.ParsePrefix(b.CIDR)
	if err != nil || cidr.Addr().Is4In6() {
		c.problem(pol, fmt.Sprintf("peer %d ipBlock cidr %q: not a CIDR: matches nothing", i, b.CIDR))
		return nil
	}
	cidr = cidr.Masked()
	var excepts []netip.Prefix
	for _, e := range b.Except {
		p, err := netip.ParsePrefix(e)
		if err != nil || p.Addr().Is4In6() {
			c.problem(pol, fmt.Sprintf("peer %d ipBlock except %q: not a CIDR: the block matches nothing", i, e))
			return nil
		}
		excepts = append(excepts, p.Masked())
	}
	var out []peer
	for _, p := range subtractPrefixes(cidr, excepts) {
		out = append(out, peer{prefix: p})
	}
	return out
}

// subtractPrefixes returns the addresses of p outside every prefix of
// minus, as the fewest aligned prefixes, in address order.
func subtractPrefixes(p netip.Prefix, minus []netip.Prefix) []netip.Prefix {
	for _, m := range minus {
		if m.Addr().BitLen() == p.Addr().BitLen() && m.Bits() <= p.Bits() && m.Contains(p.Addr()) {
			return nil // all of p goes
		}
	}
	if !slices.ContainsFunc(minus, p.Overlaps) {
		return []netip.Prefix{p}
	}
	// Some of p goes, not all: p is wider than a single address.
	lo, hi := halves(p)
	return append(subtractPrefixes(lo, minus), subtractPrefixes(hi, minus)...)
}

// halves splits p into its two halves.
func halves(p netip.Prefix) (netip.Prefix, netip.Prefix) {
	bits := p.Bits() + 1
	lo := netip.PrefixFrom(p.Addr(), bits)
	b := p.Addr().AsSlice()
	b[p.Bits()/8] |= 0x80 >> (p.Bits() % 8)
	hiAddr, _ := netip.AddrFromSlice(b)
	return lo, netip.PrefixFrom(hiAddr, bits)
}

// podsIn is the pod of a pod peer, or the pods with an address in a
// prefix peer.
func (c *policyCompiler) podsIn(p peer) []*podInfo {
	if p.pod != nil {
		return []*podInfo{p.pod}
	}
	var out []*podInfo
	for _, q := range c.pods {
		if slices.ContainsFunc(q.ips, p.prefix.Contains) {
			out = append(out, q)
		}
	}
	return out
}

// protocolOf maps a policy port's protocol, TCP when unset.
func protocolOf(p *corev1.Protocol) (uint8, bool) {
	if p == nil {
		return rules.ProtoTCP, true
	}
	switch *p {
	case corev1.ProtocolTCP:
		return rules.ProtoTCP, true
	case corev1.ProtocolUDP:
		return rules.ProtoUDP, true
	case corev1.ProtocolSCTP:
		return rules.ProtoSCTP, true
	}
	return 0, false
}

// portRange is a numeric port's range: every port when unset, the port
// alone, or port..endPort.
func portRange(p networkingv1.NetworkPolicyPort) (lo, hi uint16, ok bool) {
	if p.Port == nil {
		return 0, 0, p.EndPort == nil
	}
	n := p.Port.IntVal
	end := n
	if p.EndPort != nil {
		end = *p.EndPort
	}
	if n < 1 || n > 65535 || end < n || end > 65535 {
		return 0, 0, false
	}
	return uint16(n), uint16(end), true
}

// namedPortOf finds a container port of p by name and protocol.
func namedPortOf(p *podInfo, name string, proto uint8) (uint16, bool) {
	if name == "" {
		return 0, false // not a name: unnamed container ports must not match
	}
	for _, cp := range p.ports {
		pp, _ := protocolOf(&cp.Protocol)
		if cp.Protocol == "" {
			pp = rules.ProtoTCP
		}
		if cp.Name == name && pp == proto && cp.ContainerPort > 0 && cp.ContainerPort <= 65535 {
			return uint16(cp.ContainerPort), true
		}
	}
	return 0, false
}

func ptrValue(p *int32) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}

// problem records a part of pol that could not be read.
func (c *policyCompiler) problem(pol *networkingv1.NetworkPolicy, detail string) {
	c.problems = append(c.problems, policyProblem{namespace: pol.Namespace, name: pol.Name, uid: pol.UID, detail: detail})
}

// sortProblems orders problems for stable logs and Events.
func sortProblems(ps []policyProblem) {
	slices.SortFunc(ps, func(a, b policyProblem) int {
		return cmp.Or(strings.Compare(a.namespace, b.namespace), strings.Compare(a.name, b.name), strings.Compare(a.detail, b.detail))
	})
}
