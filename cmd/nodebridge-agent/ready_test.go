package main_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/nodebridge/nodebridge/internal/lab"
)

// conflist is the part of the agent's conflist the suite checks.
type conflist struct {
	CNIVersion string `json:"cniVersion"`
	Name       string `json:"name"`
	Plugins    []struct {
		Type               string   `json:"type"`
		Bridge             string   `json:"bridge"`
		IsGateway          bool     `json:"isGateway"`
		IsDefaultGateway   bool     `json:"isDefaultGateway"`
		IPMasq             bool     `json:"ipMasq"`
		NonMasqueradeCIDRs []string `json:"nonMasqueradeCIDRs"`
		MTU                int      `json:"mtu"`
		HairpinMode        bool     `json:"hairpinMode"`
		SNAT               *bool    `json:"snat"`
		IPAM               struct {
			Type    string                `json:"type"`
			DataDir string                `json:"dataDir"`
			Ranges  [][]map[string]string `json:"ranges"`
		} `json:"ipam"`
	} `json:"plugins"`
}

func conflistPath(n *lab.Node) string {
	return filepath.Join(n.ConfDir, "10-"+lab.NetworkName+".conflist")
}

// readConflist decodes n's conflist; a missing file is an error wrapping
// os.ErrNotExist.
func readConflist(n *lab.Node) (*conflist, error) {
	b, err := os.ReadFile(conflistPath(n))
	if err != nil {
		return nil, err
	}
	var c conflist
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("decode conflist of %s: %w: %s", n.Name, err, b)
	}
	return &c, nil
}

// checkConflist compares n's conflist with what its Node object calls for.
func checkConflist(n *lab.Node, spec lab.NodeSpec) error {
	c, err := readConflist(n)
	if err != nil {
		return err
	}
	if c.CNIVersion != "1.0.0" || c.Name != lab.NetworkName || len(c.Plugins) != 2 {
		return fmt.Errorf("conflist of %s: version %q, name %q, %d plugins", n.Name, c.CNIVersion, c.Name, len(c.Plugins))
	}
	nb, pm := c.Plugins[0], c.Plugins[1]
	var errs []error
	if nb.Type != "nodebridge" || nb.Bridge != "cni0" || !nb.IsGateway || !nb.IsDefaultGateway || !nb.IPMasq || !nb.HairpinMode {
		errs = append(errs, fmt.Errorf("plugins[0] = %+v", nb))
	}
	if got, want := fmt.Sprint(nb.NonMasqueradeCIDRs), fmt.Sprint(clusterCIDRs); got != want {
		errs = append(errs, fmt.Errorf("nonMasqueradeCIDRs = %s, want %s", got, want))
	}
	if nb.MTU != 1430 {
		errs = append(errs, fmt.Errorf("mtu = %d, want 1430 (the uplink's 1500 less IPv6 VXLAN's 70: --backend=auto)", nb.MTU))
	}
	if nb.IPAM.Type != "host-local" || nb.IPAM.DataDir != n.DataDir {
		errs = append(errs, fmt.Errorf("ipam = %+v, want host-local in %s", nb.IPAM, n.DataDir))
	}
	var subnets []string
	for _, set := range nb.IPAM.Ranges {
		for _, r := range set {
			subnets = append(subnets, r["subnet"])
		}
	}
	if got, want := fmt.Sprint(subnets), fmt.Sprint(spec.PodCIDRs); got != want {
		errs = append(errs, fmt.Errorf("ipam subnets = %s, want %s (one range set per podCIDR)", got, want))
	}
	if pm.Type != "portmap" || pm.SNAT == nil || !*pm.SNAT {
		errs = append(errs, fmt.Errorf("plugins[1] = %+v, want portmap with snat", pm))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("conflist of %s: %w", n.Name, err)
	}
	return nil
}

// checkCondition: the Node's NetworkUnavailable condition is False, set by
// the agent.
func (c *cluster) checkCondition(ctx context.Context, name string) error {
	cond, err := lab.NetworkCondition(ctx, c.cs, name)
	if err != nil {
		return err
	}
	if cond == nil || cond.Status != corev1.ConditionFalse || cond.Reason != "NodebridgeIsUp" {
		return fmt.Errorf("node %s: NetworkUnavailable = %+v, want False with reason NodebridgeIsUp", name, cond)
	}
	return nil
}

// metricValue reads one unlabelled sample from Prometheus text.
func metricValue(text, name string) (string, error) {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(?:\{[^}]*\})? (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		return "", fmt.Errorf("metric %s not in /metrics", name)
	}
	return m[1], nil
}

// testReady: with the agents ready, each node has its conflist, its Node
// condition, its agent rules, its routes, and metrics that say so.
func testReady(t *testing.T, c *cluster) {
	ctx := context.Background()
	for i, n := range c.nodes {
		if err := checkConflist(n, baseSpec(i+1)); err != nil {
			t.Error(err)
		}
		if err := c.checkCondition(ctx, n.Name); err != nil {
			t.Error(err)
		}
		if err := sameRoutes(ctx, n, c.wantRoutes(n)); err != nil {
			t.Error(err)
		}
		checkAgentRules(t, n)
		checkMetrics(t, n)
	}
}

// checkAgentRules: FORWARD jumps to NB-AGENT-FWD once, and that chain
// accepts from and to the cluster CIDR of the family, and connections the
// node DNATed, and holds nothing else. (Where the jump sits among the plugin's own per-network jumps is
// the agent's business; both accept.)
func checkAgentRules(t *testing.T, n *lab.Node) {
	t.Helper()
	for _, p := range clusterCIDRs {
		tool := "iptables"
		if p.Addr().Is6() {
			tool = "ip6tables"
		}
		out, err := n.Exec(context.Background(), tool+"-save", "-t", "filter")
		if err != nil {
			t.Fatal(err)
		}
		var jumps int
		var chain []string
		for _, l := range strings.Split(out, "\n") {
			switch {
			case l == "-A FORWARD -j NB-AGENT-FWD":
				jumps++
			case strings.HasPrefix(l, "-A NB-AGENT-FWD "):
				chain = append(chain, l)
			}
		}
		if jumps != 1 {
			t.Errorf("%s %s: %d jumps from FORWARD to NB-AGENT-FWD, want 1:\n%s", n.Name, tool, jumps, out)
		}
		want := []string{"-A NB-AGENT-FWD -s " + p.String() + " -j ACCEPT", "-A NB-AGENT-FWD -d " + p.String() + " -j ACCEPT",
			"-A NB-AGENT-FWD -m conntrack --ctstate DNAT -j ACCEPT"}
		if fmt.Sprint(chain) != fmt.Sprint(want) {
			t.Errorf("%s %s: NB-AGENT-FWD = %q, want %q", n.Name, tool, chain, want)
		}
	}
}

// checkMetrics: /healthz answers, and /metrics counts two peers and their
// four routes (two families).
func checkMetrics(t *testing.T, n *lab.Node) {
	t.Helper()
	ctx := context.Background()
	if code, body, err := n.Get(ctx, "/healthz"); err != nil || code != 200 {
		t.Errorf("%s /healthz: %d %q %v", n.Name, code, body, err)
	}
	code, text, err := n.Get(ctx, "/metrics")
	if err != nil || code != 200 {
		t.Fatalf("%s /metrics: %d %v", n.Name, code, err)
	}
	want := map[string]string{
		"nodebridge_agent_peers":            "2",
		"nodebridge_agent_routes_wanted":    "4",
		"nodebridge_agent_routes_installed": "4",
		"nodebridge_agent_peers_skipped":    "0",
	}
	for name, v := range want {
		if err := metricIs(n, name, v); err != nil {
			t.Errorf("%s: %v", n.Name, err)
		}
	}
	for _, name := range []string{"nodebridge_agent_last_sync_timestamp_seconds", "nodebridge_agent_api_errors_total",
		"nodebridge_agent_route_changes_total"} {
		if _, err := metricValue(text, name); err != nil {
			t.Errorf("%s: %v", n.Name, err)
		}
	}
	if !strings.Contains(text, "nodebridge_agent_reconcile_duration_seconds") {
		t.Errorf("%s: no nodebridge_agent_reconcile_duration_seconds in /metrics", n.Name)
	}
	// The standard collectors, and the build.
	for _, name := range []string{"go_goroutines", "process_start_time_seconds", "process_resident_memory_bytes"} {
		if _, err := metricValue(text, name); err != nil {
			t.Errorf("%s: %v", n.Name, err)
		}
	}
	if v, err := metricValue(text, "nodebridge_build_info"); err != nil || v != "1" ||
		!strings.Contains(text, `nodebridge_build_info{goversion="go`) {
		t.Errorf("%s: nodebridge_build_info %q %v, want 1 with goversion and version labels", n.Name, v, err)
	}
}

// testLatePodCIDR: a node whose Node object has no podCIDR yet: its agent
// runs, says on /readyz that it is not ready, writes no conflist and does
// not mark the network available. Once the podCIDRs are assigned it writes
// the conflist, turns ready, sets NetworkUnavailable=False, and the other
// nodes route to the new podCIDRs.
func testLatePodCIDR(t *testing.T, c *cluster) {
	ctx := context.Background()
	spec := baseSpec(5)
	cidrs := spec.PodCIDRs
	spec.PodCIDRs = nil
	n := c.addNode(t, ctx, 5, spec)
	waitFor(t, 10*time.Second, "agent of "+n.Name+" answers /readyz 503", func() error {
		code, body, err := n.Get(ctx, "/readyz")
		if err != nil {
			return err
		}
		if code != 503 || !strings.Contains(strings.ToLower(body), "podcidr") {
			return fmt.Errorf("/readyz: %d %q, want 503 saying it waits for the podCIDR", code, body)
		}
		return nil
	})
	if _, err := os.Stat(conflistPath(n)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("conflist of %s before its podCIDRs: %v, want none", n.Name, err)
	}
	if err := c.checkCondition(ctx, n.Name); err == nil {
		t.Errorf("NetworkUnavailable=False on %s before its podCIDRs were assigned", n.Name)
	}

	if err := lab.SetPodCIDRs(ctx, c.cs, n.Name, cidrs...); err != nil {
		t.Fatal(err)
	}
	spec.PodCIDRs = cidrs
	c.specs[n.Name] = spec
	waitFor(t, routeDeadline, "conflist of "+n.Name, func() error { return checkConflist(n, spec) })
	waitReady(t, n)
	waitFor(t, routeDeadline, "NetworkUnavailable=False on "+n.Name, func() error { return c.checkCondition(ctx, n.Name) })
	c.waitRoutes(t, "late podCIDR assigned", routeDeadline, append(c.nodes, n)...)
}
