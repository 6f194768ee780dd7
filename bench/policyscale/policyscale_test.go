package main

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// The world has the pods and policies asked for, the client and server
// among them with their real addresses, every other address its own, and
// every namespace its default deny.
func TestNewWorld(t *testing.T) {
	client, server := netip.MustParseAddr("10.244.0.2"), netip.MustParseAddr("10.244.0.3")
	w := newWorld(20, 50, client, server)
	if len(w.namespaces) != 20 || len(w.pods) != 1000 || len(w.policies) != 200 {
		t.Fatalf("%d namespaces, %d pods, %d policies; want 20, 1000, 200", len(w.namespaces), len(w.pods), len(w.policies))
	}
	seen := map[string]string{}
	for _, p := range w.pods {
		ip := p.Status.PodIPs[0].IP
		if other, dup := seen[ip]; dup {
			t.Fatalf("%s/%s and %s share %s", p.Namespace, p.Name, other, ip)
		}
		seen[ip] = p.Namespace + "/" + p.Name
		if !podCIDR.Contains(netip.MustParseAddr(ip)) || p.Spec.NodeName != nodeName {
			t.Errorf("%s/%s: %s on %q, want in %s on %s", p.Namespace, p.Name, ip, p.Spec.NodeName, podCIDR, nodeName)
		}
	}
	if seen[client.String()] != clientNS+"/probe-client" || seen[server.String()] != serverNS+"/probe-server" {
		t.Errorf("client at %q, server at %q", seen[client.String()], seen[server.String()])
	}
	deny := 0
	for _, p := range w.policies {
		if p.Name == "default-deny" {
			deny++
		}
	}
	if deny != 20 {
		t.Errorf("%d default denies, want one per namespace", deny)
	}
}

func TestMetricValue(t *testing.T) {
	body := `# HELP x y
nodebridge_agent_network_policies 200
nodebridge_agent_policy_kernel_objects{kind="chains"} 140
nodebridge_agent_policy_kernel_objects{kind="elements"} 7046
`
	for _, c := range []struct {
		name, label string
		want        float64
	}{
		{"nodebridge_agent_network_policies", "", 200},
		{"nodebridge_agent_policy_kernel_objects", `kind="elements"`, 7046},
		{"nodebridge_agent_policy_kernel_objects", "", -1},
		{"nodebridge_agent_absent", "", -1},
	} {
		if got := metricValue(body, c.name, c.label); got != c.want {
			t.Errorf("%s{%s} = %v, want %v", c.name, c.label, got, c.want)
		}
	}
}

// Met only when every change, either way, took at most the target, and
// the root netns stayed as it was.
func TestJudge(t *testing.T) {
	r := &report{}
	r.add("Pod labels", 60*time.Millisecond, 70*time.Millisecond)
	r.add("Pod labels", 80*time.Millisecond, 50*time.Millisecond)
	r.judge()
	if !r.Met || len(r.Changes) != 1 || len(r.Changes[0].Open) != 2 {
		t.Errorf("met %v, changes %+v", r.Met, r.Changes)
	}
	r.add("NetworkPolicy", 60*time.Millisecond, 1100*time.Millisecond)
	r.judge()
	if r.Met {
		t.Error("a change closed after 1.1 s counts as met")
	}
	var out strings.Builder
	r.print(&out)
	if !strings.Contains(out.String(), "NetworkPolicy (1 rounds)") || !strings.Contains(out.String(), "targets met: NO") {
		t.Errorf("report:\n%s", out.String())
	}
}
