package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodebridge/nodebridge/internal/lab"
)

// confResync is the agents' --resync in the conflist scenario: a
// ConfigMap change must show on the node within it.
const confResync = 2 * time.Second

// testConflistConfigMap: node 1's agent restarted with the manifest's
// --conflist-configmap and the manifest's ConfigMap writes the same
// conflist as without; an MTU and a chained plugin set in the ConfigMap
// reach the node's conflist within the resync; a bad ConfigMap leaves the
// last good conflist with an Event and the metric; a pod added after a
// good change gets its MTU. The agent is restarted without the flag at
// the end and writes its built-in conflist again, byte for byte.
func testConflistConfigMap(t *testing.T, c *cluster) {
	ctx := context.Background()
	n := c.nodes[0]
	builtin, err := os.ReadFile(conflistPath(n))
	if err != nil {
		t.Fatal(err)
	}
	cm := manifestConfigMap(t)
	if _, err := c.cs.CoreV1().ConfigMaps(cm.Namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { restartAgent(t, n, agentFlags()...) })
	t.Cleanup(func() {
		_ = c.cs.CoreV1().ConfigMaps(cm.Namespace).Delete(ctx, cm.Name, metav1.DeleteOptions{}) // gone already unless the test failed
	})
	restartAgent(t, n, append(agentFlags(), "--conflist-configmap="+cm.Namespace+"/"+cm.Name, "--resync="+confResync.String())...)
	waitFor(t, routeDeadline, "the manifest's ConfigMap gives the built-in conflist", func() error {
		return sameJSON(conflistPath(n), builtin)
	})

	setTemplate(t, c, cm, `{"plugins": [{"type": "nodebridge", "mtu": 1400}, {"type": "portmap", "capabilities": {"portMappings": true}},
		{"type": "bandwidth", "capabilities": {"bandwidth": true}}]}`)
	d := waitFor(t, confResync+routeDeadline, "conflist with mtu 1400 and bandwidth", func() error {
		return conflistHas(n, 1400, "nodebridge", "portmap", "bandwidth")
	})
	t.Logf("ConfigMap change on the node after %v (resync %v)", d.Round(time.Millisecond), confResync)
	good, err := os.ReadFile(conflistPath(n))
	if err != nil {
		t.Fatal(err)
	}
	checkShaped(t, ctx, n, 1400)

	setTemplate(t, c, cm, `{"plugins": [{"type": "nodebridge", "mtu": 1300}, {"type": "/usr/local/bin/evil"}]}`)
	waitFor(t, confResync+routeDeadline, "a ConflistConfigRejected Event on "+n.Name, func() error {
		return oneEvent(ctx, c, n.Name, "ConflistConfigRejected", n.Name, `plugins[1].type "/usr/local/bin/evil"`)
	})
	if err := metricIs(n, "nodebridge_agent_conflist_config_rejected", "1"); err != nil {
		t.Error(err)
	}
	if got, _ := os.ReadFile(conflistPath(n)); !bytes.Equal(got, good) {
		t.Errorf("bad ConfigMap: the conflist changed to\n%s", got)
	}
	waitReady(t, n)

	setTemplate(t, c, cm, `{"plugins": [{"type": "nodebridge", "mtu": 1300}, {"type": "portmap", "capabilities": {"portMappings": true}}]}`)
	waitFor(t, confResync+routeDeadline, "conflist with mtu 1300", func() error {
		return conflistHas(n, 1300, "nodebridge", "portmap")
	})
	if err := metricIs(n, "nodebridge_agent_conflist_config_rejected", "0"); err != nil {
		t.Error(err)
	}
	p := addPod(t, ctx, n, "pod-mtu")
	if out, err := p.Exec(ctx, "cat", "/sys/class/net/eth0/mtu"); err != nil || strings.TrimSpace(out) != "1300" {
		t.Errorf("MTU of eth0 in a pod added after the change: %q %v, want 1300", out, err)
	}

	if err := c.cs.CoreV1().ConfigMaps(cm.Namespace).Delete(ctx, cm.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, confResync+routeDeadline, "ConfigMap deleted: the built-in conflist, byte for byte", func() error {
		got, err := os.ReadFile(conflistPath(n))
		if err != nil || !bytes.Equal(got, builtin) {
			return fmt.Errorf("conflist %s (%v)", got, err)
		}
		return nil
	})
}

// checkShaped adds a pod with the bandwidth capability a runtime passes for
// kubernetes.io/ingress-bandwidth and checks that the chained bandwidth
// plugin shaped it: a token bucket at that rate on its host end, which the
// ADD result names. The pod has the conflist's MTU.
func checkShaped(t *testing.T, ctx context.Context, n *lab.Node, mtu int) {
	t.Helper()
	const rate, burst = 8_000_000, 800_000 // bits/s, bits
	p, err := n.AddPodWithCaps(ctx, "pod-shaped", map[string]any{"bandwidth": map[string]int{"ingressRate": rate, "ingressBurst": burst}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(context.Background()); err != nil {
			t.Errorf("remove pod %s: %v", p.Name, err)
		}
	})
	if out, err := p.Exec(ctx, "cat", "/sys/class/net/eth0/mtu"); err != nil || strings.TrimSpace(out) != fmt.Sprint(mtu) {
		t.Errorf("MTU of eth0 in the shaped pod: %q %v, want %d", out, err, mtu)
	}
	host := p.HostIfName()
	if host == "" {
		t.Fatalf("ADD result of %s names no host interface", p.Name)
	}
	out, err := n.Exec(ctx, "tc", "qdisc", "show", "dev", host)
	if err != nil || !strings.Contains(out, "qdisc tbf") || !strings.Contains(out, "rate 8Mbit") {
		t.Errorf("qdiscs of %s: %q %v, want a tbf at 8Mbit from the bandwidth plugin", host, out, err)
		return
	}
	t.Logf("pod %s shaped: %s", p.Name, strings.TrimSpace(out))
}

// manifestConfigMap is the ConfigMap deploy/nodebridge.yaml ships.
func manifestConfigMap(t *testing.T) *corev1.ConfigMap {
	t.Helper()
	var cm corev1.ConfigMap
	manifestNamed(t, readManifest(t), "ConfigMap", "kube-system", "nodebridge-config", &cm)
	return &cm
}

// restartAgent restarts n's agent with flags and waits until it is ready.
func restartAgent(t *testing.T, n *lab.Node, flags ...string) {
	t.Helper()
	if err := n.StopAgent(); err != nil {
		t.Errorf("stop agent of %s: %v", n.Name, err)
	}
	if err := n.StartAgent(flags...); err != nil {
		t.Fatal(err)
	}
	waitReady(t, n)
}

// setTemplate replaces the conflist template of cm.
func setTemplate(t *testing.T, c *cluster, cm *corev1.ConfigMap, tmpl string) {
	t.Helper()
	cm = cm.DeepCopy()
	cm.ResourceVersion = ""
	cm.Data = map[string]string{"cni-conf.json": tmpl}
	if _, err := c.cs.CoreV1().ConfigMaps(cm.Namespace).Update(context.Background(), cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// sameJSON: the file at path decodes to the same value as want.
func sameJSON(path string, want []byte) error {
	got, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		return err
	}
	gb, _ := json.Marshal(g)
	if wb, _ := json.Marshal(w); !bytes.Equal(gb, wb) {
		return fmt.Errorf("%s:\n%s\nwant the same as\n%s", path, got, want)
	}
	return nil
}

// conflistHas: n's conflist has the nodebridge mtu and the plugin types,
// in order, and the agent's own fields still in place.
func conflistHas(n *lab.Node, mtu int, types ...string) error {
	cl, err := readConflist(n)
	if err != nil {
		return err
	}
	var got []string
	for _, p := range cl.Plugins {
		got = append(got, p.Type)
	}
	if fmt.Sprint(got) != fmt.Sprint(types) || cl.Plugins[0].MTU != mtu {
		return fmt.Errorf("plugins %v mtu %d, want %v mtu %d", got, cl.Plugins[0].MTU, types, mtu)
	}
	if err := checkOwned(n, cl); err != nil {
		return err
	}
	return nil
}

// checkOwned: the fields the agent owns are the base node's, whatever the
// template says.
func checkOwned(n *lab.Node, cl *conflist) error {
	nb := cl.Plugins[0]
	if cl.Name != lab.NetworkName || nb.Bridge == "" || !nb.IsGateway || len(nb.IPAM.Ranges) != 2 || len(nb.NonMasqueradeCIDRs) != 2 {
		return fmt.Errorf("conflist of %s: agent-owned fields %+v", n.Name, cl)
	}
	return nil
}
