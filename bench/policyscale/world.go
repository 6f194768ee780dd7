package main

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"sync"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

// The ports the server listens on, one per kind of change measured.
const (
	portPod       = 7000 // opened by labelling the client pod
	portNamespace = 7001 // opened by labelling the client's namespace
	portPolicy    = 7002 // opened by a policy created
)

var probePorts = []int{portPod, portNamespace, portPolicy}

// policiesPerNS is the policies each namespace gets.
const policiesPerNS = 10

// apps are the pods' app labels, in turn, with the named port each
// one's container declares.
var apps = []struct{ name, port string }{
	{"web", "http"}, {"api", "grpc"}, {"db", "postgres"}, {"cache", "redis"}, {"worker", "metrics"},
}

var appPorts = map[string]int32{"http": 8080, "grpc": 9090, "postgres": 5432, "redis": 6379, "metrics": 9100}

func nsName(i int) string { return fmt.Sprintf("ns-%02d", i) }

// The client runs in the first namespace as a cache (no egress policy
// selects it), the server in the second as a web pod, isolated for
// ingress by that namespace's default deny.
var (
	clientNS, serverNS = nsName(0), nsName(1)
	clientApp          = "cache"
	serverApp          = "web"
)

// world is the objects of a run.
type world struct {
	namespaces []*corev1.Namespace
	pods       []*corev1.Pod
	policies   []*networkingv1.NetworkPolicy
}

// newWorld makes n namespaces of perNS pods each, the client and server
// among them with their real addresses, the rest with addresses of the
// node's podCIDR from .16 up; and policiesPerNS policies per namespace.
func newWorld(n, perNS int, clientIP, serverIP netip.Addr) *world {
	w := &world{}
	tiers := []string{"frontend", "backend", "data"}
	next := podCIDR.Addr()
	for range 16 {
		next = next.Next()
	}
	for i := range n {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: nsName(i),
			Labels: map[string]string{"team": nsName(i), "tier": tiers[i%len(tiers)]}}}
		w.namespaces = append(w.namespaces, ns)
		for j := range perNS {
			app := apps[j%len(apps)]
			name, ip := fmt.Sprintf("%s-%d", app.name, j), next
			switch {
			case ns.Name == clientNS && j == 0:
				name, ip, app = "probe-client", clientIP, apps[3]
			case ns.Name == serverNS && j == 0:
				name, ip, app = "probe-server", serverIP, apps[0]
			default:
				next = next.Next()
			}
			w.pods = append(w.pods, podObject(ns.Name, name, app.name, app.port, ip))
		}
		w.policies = append(w.policies, namespacePolicies(i, n)...)
	}
	return w
}

// podObject is a running pod on the node with one address.
func podObject(ns, name, app, port string, ip netip.Addr) *corev1.Pod {
	zero := int64(0)
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns,
		Labels: map[string]string{"app": app, "pod-template-hash": "5d8f7c" + app}},
		Spec: corev1.PodSpec{NodeName: nodeName, TerminationGracePeriodSeconds: &zero,
			Containers: []corev1.Container{{Name: app, Image: "none",
				Ports: []corev1.ContainerPort{{Name: port, ContainerPort: appPorts[port], Protocol: corev1.ProtocolTCP}}}}}}
	p.Status.Phase = corev1.PodRunning
	p.Status.PodIP = ip.String()
	p.Status.PodIPs = []corev1.PodIP{{IP: ip.String()}}
	return p
}

func labelSel(kv ...string) *metav1.LabelSelector {
	s := &metav1.LabelSelector{MatchLabels: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		s.MatchLabels[kv[i]] = kv[i+1]
	}
	return s
}

func tcpPort(n int, end int32) networkingv1.NetworkPolicyPort {
	tcp := corev1.ProtocolTCP
	p := intstr.FromInt32(int32(n))
	np := networkingv1.NetworkPolicyPort{Protocol: &tcp, Port: &p}
	if end > 0 {
		np.EndPort = &end
	}
	return np
}

func namedPort(name string) networkingv1.NetworkPolicyPort {
	tcp := corev1.ProtocolTCP
	p := intstr.FromString(name)
	return networkingv1.NetworkPolicyPort{Protocol: &tcp, Port: &p}
}

func from(peers ...networkingv1.NetworkPolicyPeer) []networkingv1.NetworkPolicyPeer { return peers }

func ingress(peers []networkingv1.NetworkPolicyPeer, ports ...networkingv1.NetworkPolicyPort) []networkingv1.NetworkPolicyIngressRule {
	return []networkingv1.NetworkPolicyIngressRule{{From: peers, Ports: ports}}
}

// namespacePolicies are namespace i's policies, of the shapes clusters
// run: a default deny, the namespace open to itself, monitoring from the
// last namespace, web open to the world outside the cluster, api from
// frontend namespaces' web pods by named port, db from api by named port,
// cache from api and workers, egress of db and workers held in, and an
// ingress controller namespace's reach. The server's namespace trades the
// last two for the probe's.
func namespacePolicies(i, n int) []*networkingv1.NetworkPolicy {
	ns := nsName(i)
	pol := func(name string, sel *metav1.LabelSelector, in []networkingv1.NetworkPolicyIngressRule,
		out []networkingv1.NetworkPolicyEgressRule, types ...networkingv1.PolicyType) *networkingv1.NetworkPolicy {
		return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: networkingv1.NetworkPolicySpec{PodSelector: *sel, Ingress: in, Egress: out, PolicyTypes: types}}
	}
	outside := networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: []string{"10.0.0.0/8"}}}
	inOnly, outOnly := networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress
	ps := []*networkingv1.NetworkPolicy{
		pol("default-deny", labelSel(), nil, nil, inOnly),
		pol("same-namespace", labelSel(), ingress(from(networkingv1.NetworkPolicyPeer{PodSelector: labelSel()})), nil, inOnly),
		pol("monitoring", labelSel(), ingress(from(networkingv1.NetworkPolicyPeer{NamespaceSelector: labelSel("team", nsName(n-1))}),
			tcpPort(9100, 0)), nil, inOnly),
		pol("web-public", labelSel("app", "web"), ingress(from(outside), tcpPort(8080, 0), tcpPort(8443, 0)), nil, inOnly),
		pol("api-from-frontends", labelSel("app", "api"), ingress(from(networkingv1.NetworkPolicyPeer{
			NamespaceSelector: labelSel("tier", "frontend"), PodSelector: labelSel("app", "web")}), namedPort("grpc")), nil, inOnly),
		pol("db-from-api", labelSel("app", "db"), ingress(from(networkingv1.NetworkPolicyPeer{PodSelector: labelSel("app", "api")}),
			namedPort("postgres")), nil, inOnly),
		pol("cache-clients", labelSel("app", "cache"), ingress(from(networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"api", "worker"}}}}}),
			namedPort("redis")), nil, inOnly),
		pol("db-egress", labelSel("app", "db"), nil, []networkingv1.NetworkPolicyEgressRule{
			{To: from(networkingv1.NetworkPolicyPeer{NamespaceSelector: labelSel(corev1.LabelMetadataName, ns)})},
			{To: from(networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "10.96.0.0/12"}}),
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: ptr(corev1.ProtocolUDP), Port: ptr(intstr.FromInt32(53))}}}}, outOnly),
	}
	if ns == serverNS {
		return append(ps,
			pol("probe-pods", labelSel(), ingress(from(networkingv1.NetworkPolicyPeer{NamespaceSelector: labelSel(),
				PodSelector: labelSel("role", "probe-client")}), tcpPort(portPod, 0)), nil, inOnly),
			pol("probe-namespaces", labelSel(), ingress(from(networkingv1.NetworkPolicyPeer{NamespaceSelector: labelSel("probe", "yes")}),
				tcpPort(portNamespace, 0)), nil, inOnly))
	}
	return append(ps,
		pol("worker-egress", labelSel("app", "worker"), nil, []networkingv1.NetworkPolicyEgressRule{
			{To: from(networkingv1.NetworkPolicyPeer{NamespaceSelector: labelSel(), PodSelector: labelSel("app", "api")}),
				Ports: []networkingv1.NetworkPolicyPort{tcpPort(9090, 9099)}},
			{To: from(outside), Ports: []networkingv1.NetworkPolicyPort{tcpPort(443, 0)}}}, outOnly),
		pol("ingress-controller", labelSel("app", "web"), ingress(from(networkingv1.NetworkPolicyPeer{
			NamespaceSelector: labelSel("team", nsName(n-2)), PodSelector: labelSel("app", "web")}), tcpPort(80, 0)), nil, inOnly))
}

// probePolicy opens the server's namespace to the client's on
// portPolicy: the policy the measured policy change creates and deletes.
func probePolicy() *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "probe-policy", Namespace: serverNS},
		Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: ingress(from(networkingv1.NetworkPolicyPeer{NamespaceSelector: labelSel(corev1.LabelMetadataName, clientNS)}),
				tcpPort(portPolicy, 0))}}
}

func ptr[T any](v T) *T { return &v }

// create makes the world's objects with workers parallel clients:
// namespaces and their default ServiceAccounts (pod admission wants one),
// then pods with their status, then policies.
func (w *world) create(ctx context.Context, cs kubernetes.Interface, workers int) error {
	if err := parallel(workers, len(w.namespaces), func(i int) error {
		ns := w.namespaces[i]
		if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create namespace %s: %w", ns.Name, err)
		}
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns.Name}}
		if _, err := cs.CoreV1().ServiceAccounts(ns.Name).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create serviceaccount %s/default: %w", ns.Name, err)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := parallel(workers, len(w.pods), func(i int) error {
		p := w.pods[i]
		got, err := cs.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create pod %s/%s: %w", p.Namespace, p.Name, err)
		}
		got.Status = p.Status
		if _, err := cs.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("set status of pod %s/%s: %w", p.Namespace, p.Name, err)
		}
		return nil
	}); err != nil {
		return err
	}
	return parallel(workers, len(w.policies), func(i int) error {
		p := w.policies[i]
		if _, err := cs.NetworkingV1().NetworkPolicies(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create networkpolicy %s/%s: %w", p.Namespace, p.Name, err)
		}
		return nil
	})
}

// parallel runs f(0..n-1) on workers goroutines and returns the first
// error.
func parallel(workers, n int, f func(int) error) error {
	var mu sync.Mutex
	var first error
	next := 0
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil || i >= n
				mu.Unlock()
				if stop {
					return
				}
				if err := f(i); err != nil {
					mu.Lock()
					first = cmp.Or(first, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return first
}

// shrink deletes every policy but the server namespace's default deny and
// the probe policy, and every pod but the client and the server.
func (w *world) shrink(ctx context.Context, cs kubernetes.Interface, workers int) error {
	zero := int64(0)
	if err := parallel(workers, len(w.pods), func(i int) error {
		p := w.pods[i]
		if p.Name == "probe-client" || p.Name == "probe-server" {
			return nil
		}
		if err := cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
			return fmt.Errorf("delete pod %s/%s: %w", p.Namespace, p.Name, err)
		}
		return nil
	}); err != nil {
		return err
	}
	return parallel(workers, len(w.policies), func(i int) error {
		p := w.policies[i]
		if p.Namespace == serverNS && p.Name == "default-deny" {
			return nil
		}
		if err := cs.NetworkingV1().NetworkPolicies(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil {
			return fmt.Errorf("delete networkpolicy %s/%s: %w", p.Namespace, p.Name, err)
		}
		return nil
	})
}
