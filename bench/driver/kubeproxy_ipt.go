package main

import (
	"fmt"
	"strings"
)

// kube-proxy's iptables mode, as iptables-restore input. Per Service: an
// entry in KUBE-SERVICES, a KUBE-SVC-<hash> chain with one jump per
// endpoint (the first picked with probability 1/2, the last taking the
// rest) and a KUBE-SEP-<hash> chain per endpoint marking hairpin traffic
// for masquerade and DNATing to the endpoint: 7 rules. Around them the
// fixed chains: KUBE-SERVICES jumped to from PREROUTING and OUTPUT,
// KUBE-POSTROUTING and KUBE-MARK-MASQ in nat, and KUBE-FORWARD,
// KUBE-FIREWALL and the rest kube-proxy keeps in filter. IPv4 only.

// iptRulesPerService is the number of rules a Service adds.
const iptRulesPerService = 1 + endpointsPerService + 2*endpointsPerService

// iptNATHead is what kube-proxy keeps in nat whatever the Services: the
// chains every Service leads through and the jumps into them.
const iptNATHead = `:KUBE-SERVICES - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
`

// iptNATTail ends KUBE-SERVICES, after every Service's entry.
const iptNATTail = `-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
`

// iptFilter is the filter table kube-proxy keeps: with no NodePort,
// firewall or endpoint-less Service, its chains hold only the fixed rules.
const iptFilter = `*filter
:KUBE-FORWARD - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-FIREWALL - [0:0]
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
-A INPUT -j KUBE-FIREWALL
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -j KUBE-FIREWALL
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
COMMIT
`

// iptFixedRules is the number of rules in the fixed chains and jumps.
const iptFixedRules = 8 + 15

// iptFull is the whole load for n Services at generation 0, for
// `iptables-restore --noflush`: it adds to the node's built-in chains
// and leaves their policies (FORWARD DROP) as they are.
func iptFull(n int) []byte {
	var chains, rules strings.Builder
	chains.WriteString("*nat\n")
	for i := range n {
		s := kpService{index: i}
		s.iptDeclare(&chains)
		fmt.Fprintf(&rules, "-A KUBE-SERVICES -m comment --comment %q -m tcp -p tcp -d %s/32 --dport 80 -j %s\n",
			s.portName()+" cluster IP", s.clusterIP(), s.svcChain())
		s.iptRules(&rules)
	}
	return []byte(chains.String() + iptNATHead + rules.String() + iptNATTail + "COMMIT\n" + iptFilter)
}

// iptSync is a partial sync of Service s, as kube-proxy writes one after
// the Service's endpoints changed: its KUBE-SVC chain re-declared (which
// flushes it) and refilled, the new endpoints' chains made, and those of
// the previous generation flushed and deleted, in one transaction.
func iptSync(s kpService) []byte {
	old := kpService{index: s.index, gen: s.gen - 1}
	var b strings.Builder
	b.WriteString("*nat\n")
	s.iptDeclare(&b)
	for j := range endpointsPerService {
		fmt.Fprintf(&b, ":%s - [0:0]\n", old.sepChain(j))
	}
	s.iptRules(&b)
	for j := range endpointsPerService {
		fmt.Fprintf(&b, "-X %s\n", old.sepChain(j))
	}
	b.WriteString("COMMIT\n")
	return []byte(b.String())
}

// svcChain is the Service's chain: KUBE-SVC- and 16 base32 characters,
// 25 in all (iptables allows 28).
func (s kpService) svcChain() string { return "KUBE-SVC-" + chainHash(s.portName()+"/tcp", 16) }

// sepChain is endpoint j's chain.
func (s kpService) sepChain(j int) string { return "KUBE-SEP-" + chainHash(s.endpointKey(j), 16) }

// iptDeclare writes the declarations of the Service's chains.
func (s kpService) iptDeclare(b *strings.Builder) {
	fmt.Fprintf(b, ":%s - [0:0]\n", s.svcChain())
	for j := range endpointsPerService {
		fmt.Fprintf(b, ":%s - [0:0]\n", s.sepChain(j))
	}
}

// iptRules writes the rules of the Service's own chains.
func (s kpService) iptRules(b *strings.Builder) {
	for j := range endpointsPerService {
		pick := ""
		if left := endpointsPerService - j; left > 1 {
			pick = fmt.Sprintf(" -m statistic --mode random --probability %.10f", 1/float64(left))
		}
		fmt.Fprintf(b, "-A %s -m comment --comment \"%s -> %s:80\"%s -j %s\n", s.svcChain(), s.portName(), s.endpoint(j), pick, s.sepChain(j))
	}
	for j := range endpointsPerService {
		ep := s.endpoint(j)
		fmt.Fprintf(b, "-A %s -m comment --comment %s -s %s/32 -j KUBE-MARK-MASQ\n", s.sepChain(j), s.portName(), ep)
		fmt.Fprintf(b, "-A %s -m comment --comment %s -m tcp -p tcp -j DNAT --to-destination %s:80\n", s.sepChain(j), s.portName(), ep)
	}
}
