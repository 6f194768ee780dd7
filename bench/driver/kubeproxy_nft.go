package main

import (
	"fmt"
	"strings"
)

// kube-proxy's nftables mode, as `nft -f` input: table ip kube-proxy. Per
// Service: an element in the cluster-ips set and in the service-ips verdict
// map (ClusterIP . protocol . port : goto its service chain), a
// service-<hash>-<namespace>/<name>/tcp/http chain picking an endpoint with
// numgen random mod 2, and an endpoint-<hash>-...__<IP>/80 chain per
// endpoint marking hairpin traffic for masquerade and DNATing to it: 5
// rules. Around them the fixed sets, maps and chains, base chains hooked
// at prerouting, input, forward, output and postrouting.

// nftRulesPerService is the number of rules a Service adds.
const nftRulesPerService = 1 + 2*endpointsPerService

// nftTableName is the table kube-proxy's nftables mode writes, in family ip.
const nftTableName = "kube-proxy"

// nftHead is the fixed part of the table.
const nftHead = `add table ip kube-proxy { comment "rules for kube-proxy" ; }
add set ip kube-proxy cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }
add set ip kube-proxy nodeport-ips { type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }
add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }
add map ip kube-proxy service-nodeports { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }
add map ip kube-proxy no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }
add map ip kube-proxy no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }
add map ip kube-proxy firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }
add chain ip kube-proxy firewall-check
add rule ip kube-proxy firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips
add chain ip kube-proxy service-endpoints-check
add rule ip kube-proxy service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services
add chain ip kube-proxy nodeport-endpoints-check
add rule ip kube-proxy nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports
add chain ip kube-proxy cluster-ips-check
add rule ip kube-proxy cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"
add rule ip kube-proxy cluster-ips-check ip daddr 198.18.0.0/16 drop comment "Drop traffic to unallocated ClusterIPs"
add chain ip kube-proxy mark-for-masquerade
add rule ip kube-proxy mark-for-masquerade mark set mark or 0x4000
add chain ip kube-proxy masquerading
add rule ip kube-proxy masquerading mark and 0x4000 == 0 return
add rule ip kube-proxy masquerading mark set mark xor 0x4000
add rule ip kube-proxy masquerading masquerade fully-random
add chain ip kube-proxy services
add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips
add rule ip kube-proxy services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports
add chain ip kube-proxy filter-prerouting { type filter hook prerouting priority dstnat - 10 ; }
add rule ip kube-proxy filter-prerouting ct state new jump firewall-check
add chain ip kube-proxy filter-input { type filter hook input priority -110 ; }
add rule ip kube-proxy filter-input ct state new jump nodeport-endpoints-check
add rule ip kube-proxy filter-input ct state new jump service-endpoints-check
add chain ip kube-proxy filter-forward { type filter hook forward priority -110 ; }
add rule ip kube-proxy filter-forward ct state new jump service-endpoints-check
add rule ip kube-proxy filter-forward ct state new jump cluster-ips-check
add chain ip kube-proxy filter-output { type filter hook output priority -110 ; }
add rule ip kube-proxy filter-output ct state new jump service-endpoints-check
add rule ip kube-proxy filter-output ct state new jump cluster-ips-check
add chain ip kube-proxy filter-output-post-dnat { type filter hook output priority -90 ; }
add rule ip kube-proxy filter-output-post-dnat ct state new jump firewall-check
add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority dstnat ; }
add rule ip kube-proxy nat-prerouting jump services
add chain ip kube-proxy nat-output { type nat hook output priority -100 ; }
add rule ip kube-proxy nat-output jump services
add chain ip kube-proxy nat-postrouting { type nat hook postrouting priority srcnat ; }
add rule ip kube-proxy nat-postrouting jump masquerading
`

// nftFixedRules is the number of rules in nftHead.
const nftFixedRules = 22

// nftFull is the whole table for n Services at generation 0.
func nftFull(n int) []byte {
	var b strings.Builder
	b.WriteString(nftHead)
	for i := range n {
		s := kpService{index: i}
		s.nftChains(&b)
		fmt.Fprintf(&b, "add element ip kube-proxy cluster-ips { %s }\n", s.clusterIP())
		fmt.Fprintf(&b, "add element ip kube-proxy service-ips { %s : goto %s }\n", s.nftKey(), s.serviceChain())
	}
	return []byte(b.String())
}

// nftSync is a partial sync of Service s in one transaction, as
// kube-proxy's nftables mode writes one after the Service's endpoints
// changed: its service chain flushed and refilled, the new endpoints'
// chains made, those of the previous generation flushed and deleted, and
// its service-ips element written anew.
func nftSync(s kpService) []byte {
	old := kpService{index: s.index, gen: s.gen - 1}
	var b strings.Builder
	fmt.Fprintf(&b, "add chain ip kube-proxy %s\nflush chain ip kube-proxy %[1]s\n", s.serviceChain())
	s.nftChains(&b)
	for j := range endpointsPerService {
		fmt.Fprintf(&b, "flush chain ip kube-proxy %s\ndelete chain ip kube-proxy %[1]s\n", old.endpointChain(j))
	}
	fmt.Fprintf(&b, "delete element ip kube-proxy service-ips { %s }\n", s.nftKey())
	fmt.Fprintf(&b, "add element ip kube-proxy service-ips { %s : goto %s }\n", s.nftKey(), s.serviceChain())
	return []byte(b.String())
}

// nftPath is kube-proxy's name of the Service port in its chain names.
func (s kpService) nftPath() string { return strings.Replace(s.portName(), ":", "/tcp/", 1) }

// serviceChain is the Service's chain.
func (s kpService) serviceChain() string {
	return "service-" + chainHash(s.nftPath(), 8) + "-" + s.nftPath()
}

// endpointChain is endpoint j's chain.
func (s kpService) endpointChain(j int) string {
	return fmt.Sprintf("endpoint-%s-%s__%s/80", chainHash(s.endpointKey(j), 8), s.nftPath(), s.endpoint(j))
}

// nftKey is the Service's key in the service-ips map.
func (s kpService) nftKey() string { return s.clusterIP().String() + " . tcp . 80" }

// nftChains writes the Service's chains and their rules, the endpoints'
// first, since the service chain's map refers to them.
func (s kpService) nftChains(b *strings.Builder) {
	fmt.Fprintf(b, "add chain ip kube-proxy %s\n", s.serviceChain())
	picks := make([]string, endpointsPerService)
	for j := range endpointsPerService {
		ep, c := s.endpoint(j), s.endpointChain(j)
		fmt.Fprintf(b, "add chain ip kube-proxy %s\n", c)
		fmt.Fprintf(b, "add rule ip kube-proxy %s ip saddr %s jump mark-for-masquerade\n", c, ep)
		fmt.Fprintf(b, "add rule ip kube-proxy %s meta l4proto tcp dnat to %s:80\n", c, ep)
		picks[j] = fmt.Sprintf("%d : goto %s", j, c)
	}
	fmt.Fprintf(b, "add rule ip kube-proxy %s numgen random mod %d vmap { %s }\n", s.serviceChain(), endpointsPerService, strings.Join(picks, " , "))
}
