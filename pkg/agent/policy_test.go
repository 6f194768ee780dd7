package agent

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/nodebridge/nodebridge/pkg/rules"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// policyPod is a pod for the policy tests: name in namespace, on node,
// with labels ("k=v,k=v"), addresses and named TCP ports ("name=port").
func policyPod(ns, name, node, lbls string, ips []string, ports ...string) *corev1.Pod {
	p := &corev1.Pod{}
	p.Namespace, p.Name, p.Spec.NodeName = ns, name, node
	p.Labels = map[string]string{}
	for _, kv := range strings.Split(lbls, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			p.Labels[k] = v
		}
	}
	for _, ip := range ips {
		p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: ip})
	}
	ctr := corev1.Container{Name: "c"}
	for _, np := range ports {
		n, port, _ := strings.Cut(np, "=")
		var num int32
		fmt.Sscan(port, &num)
		ctr.Ports = append(ctr.Ports, corev1.ContainerPort{Name: n, ContainerPort: num, Protocol: corev1.ProtocolTCP})
	}
	p.Spec.Containers = []corev1.Container{ctr}
	p.Status.Phase = corev1.PodRunning
	return p
}

// policyWorld is the cluster of the policy tests, seen from node "n1":
// in namespace default (team=a) web (http=80) and db on n1, client on n2
// (metrics=9090); in namespace other (team=b) client on n2; and pods
// policy never sees.
func policyWorld() ([]*corev1.Pod, []*corev1.Namespace) {
	hostNet := policyPod("default", "hostnet", "n1", "app=web", []string{"198.18.0.11"})
	hostNet.Spec.HostNetwork = true
	done := policyPod("default", "done", "n1", "app=web", []string{"10.244.1.9"})
	done.Status.Phase = corev1.PodSucceeded
	pods := []*corev1.Pod{
		policyPod("default", "web", "n1", "app=web", []string{"10.244.1.2", "fd00:10:244:1::2"}, "http=80"),
		policyPod("default", "db", "n1", "app=db", []string{"10.244.1.3"}),
		policyPod("default", "client", "n2", "app=client", []string{"10.244.2.6"}, "metrics=9090"),
		policyPod("other", "client", "n2", "app=client", []string{"10.244.2.5", "fd00:10:244:2::5"}),
		policyPod("default", "pending", "n1", "app=web", nil),
		hostNet, done,
	}
	ns := func(name, team string) *corev1.Namespace {
		n := &corev1.Namespace{}
		n.Name, n.Labels = name, map[string]string{"team": team, corev1.LabelMetadataName: name}
		return n
	}
	return pods, []*corev1.Namespace{ns("default", "a"), ns("other", "b")}
}

// allowList renders a Policy's rules as the "in|out POD <-|-> PEER PROTO
// LO-HI" lines they pair up (within a family), and the isolated pods as
// "isolated in|out POD", sorted.
func allowList(p rules.Policy) []string {
	var out []string
	for d, dir := range []string{"in", "out"} {
		for _, ip := range p.Isolated[d] {
			out = append(out, "isolated "+dir+" "+ip.String())
		}
		arrow := "<-"
		if dir == "out" {
			arrow = "->"
		}
		for _, r := range p.Rules[d] {
			ports := r.Ports
			if len(ports) == 0 {
				ports = []rules.Port{{}}
			}
			for _, pod := range r.Pods {
				for _, peer := range r.Peers {
					for _, port := range ports {
						if pod.Is4() == peer.Addr().Is4() {
							out = append(out, fmt.Sprintf("%s %s %s %s %d %d-%d", dir, pod, arrow, peer, port.Proto, port.Lo, port.Hi))
						}
					}
				}
			}
		}
	}
	return slices.Compact(slices.Sorted(slices.Values(out)))
}

func sel(kv ...string) *metav1.LabelSelector {
	s := &metav1.LabelSelector{MatchLabels: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		s.MatchLabels[kv[i]] = kv[i+1]
	}
	return s
}

func tcp(port int) networkingv1.NetworkPolicyPort {
	p := intstr.FromInt32(int32(port))
	return networkingv1.NetworkPolicyPort{Protocol: ptr(corev1.ProtocolTCP), Port: &p}
}

func named(name string) networkingv1.NetworkPolicyPort {
	p := intstr.FromString(name)
	return networkingv1.NetworkPolicyPort{Protocol: ptr(corev1.ProtocolTCP), Port: &p}
}

func ptr[T any](v T) *T { return &v }

// policy is a NetworkPolicy in default selecting podSelector.
func policy(name string, podSelector *metav1.LabelSelector, types []networkingv1.PolicyType,
	in []networkingv1.NetworkPolicyIngressRule, out []networkingv1.NetworkPolicyEgressRule) *networkingv1.NetworkPolicy {
	p := &networkingv1.NetworkPolicy{}
	p.Namespace, p.Name = "default", name
	p.Spec = networkingv1.NetworkPolicySpec{PodSelector: *podSelector, PolicyTypes: types, Ingress: in, Egress: out}
	return p
}

var (
	ingressOnly = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	egressOnly  = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
)

// Upstream's semantics, one rule at a time, on the node's pods.
func TestCompilePolicy(t *testing.T) {
	pods, namespaces := policyWorld()
	web := sel("app", "web")
	for _, tc := range []struct {
		name     string
		policies []*networkingv1.NetworkPolicy
		want     []string
		problems []string
	}{
		{name: "no policy: nothing isolated"},
		{name: "default deny ingress of the namespace",
			policies: []*networkingv1.NetworkPolicy{policy("deny", sel(), ingressOnly, nil, nil)},
			want:     []string{"isolated in 10.244.1.2", "isolated in 10.244.1.3", "isolated in fd00:10:244:1::2"}},
		{name: "podSelector peer: its namespace only",
			policies: []*networkingv1.NetworkPolicy{policy("p", web, ingressOnly,
				[]networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("app", "client")}},
					Ports: []networkingv1.NetworkPolicyPort{tcp(80)}}}, nil)},
			want: []string{"isolated in 10.244.1.2", "isolated in fd00:10:244:1::2", "in 10.244.1.2 <- 10.244.2.6/32 6 80-80"}},
		{name: "namespaceSelector peer: every pod of those namespaces, both families",
			policies: []*networkingv1.NetworkPolicy{policy("p", web, ingressOnly,
				[]networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel("team", "b")}}}}, nil)},
			want: []string{"isolated in 10.244.1.2", "isolated in fd00:10:244:1::2",
				"in 10.244.1.2 <- 10.244.2.5/32 0 0-0", "in fd00:10:244:1::2 <- fd00:10:244:2::5/128 0 0-0"}},
		{name: "both selectors in one peer: the matching pods of those namespaces",
			policies: []*networkingv1.NetworkPolicy{policy("p", web, ingressOnly,
				[]networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{
					{NamespaceSelector: sel(), PodSelector: sel("app", "client")}}}}, nil)},
			want: []string{"isolated in 10.244.1.2", "isolated in fd00:10:244:1::2",
				"in 10.244.1.2 <- 10.244.2.5/32 0 0-0", "in 10.244.1.2 <- 10.244.2.6/32 0 0-0", "in fd00:10:244:1::2 <- fd00:10:244:2::5/128 0 0-0"}},
		{name: "ipBlock with except",
			policies: []*networkingv1.NetworkPolicy{policy("p", web, ingressOnly,
				[]networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{
					{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8", Except: []string{"10.244.0.0/16"}}}}}}, nil)},
			want: []string{"isolated in 10.244.1.2", "isolated in fd00:10:244:1::2",
				"in 10.244.1.2 <- 10.0.0.0/9 0 0-0", "in 10.244.1.2 <- 10.128.0.0/10 0 0-0", "in 10.244.1.2 <- 10.192.0.0/11 0 0-0",
				"in 10.244.1.2 <- 10.224.0.0/12 0 0-0", "in 10.244.1.2 <- 10.240.0.0/14 0 0-0", "in 10.244.1.2 <- 10.245.0.0/16 0 0-0",
				"in 10.244.1.2 <- 10.246.0.0/15 0 0-0", "in 10.244.1.2 <- 10.248.0.0/13 0 0-0"}},
		{name: "empty from: everyone, a port range over UDP and SCTP",
			policies: []*networkingv1.NetworkPolicy{policy("p", sel("app", "db"), ingressOnly,
				[]networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{
					{Protocol: ptr(corev1.ProtocolUDP), Port: ptr(intstr.FromInt32(8000)), EndPort: ptr(int32(8100))},
					{Protocol: ptr(corev1.ProtocolSCTP)}}}}, nil)},
			want: []string{"isolated in 10.244.1.3", "in 10.244.1.3 <- 0.0.0.0/0 17 8000-8100", "in 10.244.1.3 <- 0.0.0.0/0 132 0-0"}},
		{name: "named port on ingress: the selected pod's",
			policies: []*networkingv1.NetworkPolicy{policy("p", sel(), ingressOnly,
				[]networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{named("http")}}}, nil)},
			want: []string{"isolated in 10.244.1.2", "isolated in 10.244.1.3", "isolated in fd00:10:244:1::2",
				"in 10.244.1.2 <- 0.0.0.0/0 6 80-80", "in fd00:10:244:1::2 <- ::/0 6 80-80"}},
		{name: "named port on egress: the destination pod's, also through everything",
			policies: []*networkingv1.NetworkPolicy{policy("p", sel("app", "db"), egressOnly, nil,
				[]networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{named("metrics")}}})},
			want: []string{"isolated out 10.244.1.3", "out 10.244.1.3 -> 10.244.2.6/32 6 9090-9090"}},
		{name: "egress rules without policyTypes isolate both ways",
			policies: []*networkingv1.NetworkPolicy{policy("p", sel("app", "db"), nil, nil,
				[]networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("app", "client")}}}})},
			want: []string{"isolated in 10.244.1.3", "isolated out 10.244.1.3", "out 10.244.1.3 -> 10.244.2.6/32 0 0-0"}},
		{name: "policies add up",
			policies: []*networkingv1.NetworkPolicy{
				policy("a", web, ingressOnly, []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{tcp(80)},
					From: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("app", "client")}}}}, nil),
				policy("b", web, ingressOnly, []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{tcp(443)},
					From: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("app", "client")}}}}, nil)},
			want: []string{"isolated in 10.244.1.2", "isolated in fd00:10:244:1::2",
				"in 10.244.1.2 <- 10.244.2.6/32 6 80-80", "in 10.244.1.2 <- 10.244.2.6/32 6 443-443"}},
		{name: "an unreadable selector is read strictly, and said",
			policies: []*networkingv1.NetworkPolicy{policy("bad", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "app", Operator: "Near"}}}, ingressOnly,
				[]networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "bogus"}}}}}, nil)},
			want: []string{"isolated in 10.244.1.2", "isolated in 10.244.1.3", "isolated in fd00:10:244:1::2"},
			problems: []string{
				`default/bad: peer 0 ipBlock cidr "bogus": not a CIDR: matches nothing`,
				`default/bad: podSelector: "Near" is not a valid label selector operator: applied to every pod of the namespace`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, problems := compilePolicy(policyInput{node: "n1", pods: pods, namespaces: namespaces, policies: tc.policies})
			want := slices.Sorted(slices.Values(tc.want))
			if g := slices.Sorted(slices.Values(allowList(got))); !slices.Equal(g, want) {
				t.Errorf("got\n  %s\nwant\n  %s", strings.Join(g, "\n  "), strings.Join(want, "\n  "))
			}
			var ps []string
			for _, p := range problems {
				ps = append(ps, p.String())
			}
			if !slices.Equal(ps, tc.problems) {
				t.Errorf("problems %q, want %q", ps, tc.problems)
			}
		})
	}
}

// A rule stays one Rule whatever the pods and peers it pairs up, so that
// what the kernel holds grows with the classes of pods, never with pods
// times peers.
func TestCompilePolicyCompact(t *testing.T) {
	var pods []*corev1.Pod
	for i := range 200 {
		pods = append(pods, policyPod("default", fmt.Sprint("p", i), "n1", "app=web", []string{fmt.Sprintf("10.244.%d.%d", 1+i/200, 2+i%200)}))
	}
	pol := policy("p", sel(), ingressOnly, []networkingv1.NetworkPolicyIngressRule{{
		From: []networkingv1.NetworkPolicyPeer{{PodSelector: sel()}}, Ports: []networkingv1.NetworkPolicyPort{tcp(80), tcp(443)}}}, nil)
	got, _ := compilePolicy(policyInput{node: "n1", pods: pods, policies: []*networkingv1.NetworkPolicy{pol}})
	rs := got.Rules[rules.Ingress]
	if len(rs) != 1 || len(rs[0].Pods) != 200 || len(rs[0].Peers) != 200 || len(rs[0].Ports) != 2 || len(got.Isolated[rules.Ingress]) != 200 {
		t.Fatalf("%d rules (want 1 of 200 pods, 200 peers, 2 ports), %d isolated", len(rs), len(got.Isolated[rules.Ingress]))
	}
}

func TestSubtractPrefixes(t *testing.T) {
	p := netip.MustParsePrefix
	for _, tc := range []struct {
		cidr  string
		minus []string
		want  []string
	}{
		{"10.0.0.0/24", nil, []string{"10.0.0.0/24"}},
		{"10.0.0.0/24", []string{"10.0.0.0/8"}, nil},
		{"10.0.0.0/30", []string{"10.0.0.1/32"}, []string{"10.0.0.0/32", "10.0.0.2/31"}},
		{"10.0.0.0/24", []string{"10.0.0.0/25", "10.0.0.128/25"}, nil},
		{"fd00::/62", []string{"fd00::/64", "10.0.0.0/8"}, []string{"fd00:0:0:1::/64", "fd00:0:0:2::/63"}},
	} {
		var minus []netip.Prefix
		for _, m := range tc.minus {
			minus = append(minus, p(m))
		}
		var got []string
		for _, q := range subtractPrefixes(p(tc.cidr), minus) {
			got = append(got, q.String())
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s less %v: got %v, want %v", tc.cidr, tc.minus, got, tc.want)
		}
	}
}
