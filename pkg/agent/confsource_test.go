package agent

import (
	"context"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// confAgent is an agent writing its conflist into a temp dir from the
// template of ConfigMap kube-system/nb in cs; its Events queue up unsent.
func confAgent(t *testing.T, cs *fake.Clientset) (*agent, *applied) {
	t.Helper()
	c := Defaults()
	c.NodeName, c.CNIConfDir = "node-a", t.TempDir()
	a := newAgent(c, discard(), nil, nil)
	a.conf = newConfSource(cs, "kube-system", "nb", c.ConflistKey)
	a.events = newEventRecorder(cs, c.NodeName, a.metrics, discard())
	st := &applied{ownNode: node("node-a", []string{"10.244.1.0/24"}, "192.0.2.1")}
	st.d = desired{podCIDRs: pfx(t, "10.244.1.0/24"), clusterCIDRs: pfx(t, "10.244.0.0/16")}
	return a, st
}

func configMap(tmpl string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "nb"},
		Data: map[string]string{"cni-conf.json": tmpl}}
}

// setConfigMap creates or replaces the ConfigMap.
func setConfigMap(t *testing.T, cs *fake.Clientset, tmpl string) {
	t.Helper()
	cms := cs.CoreV1().ConfigMaps("kube-system")
	if _, err := cms.Update(context.Background(), configMap(tmpl), metav1.UpdateOptions{}); err == nil {
		return
	}
	if _, err := cms.Create(context.Background(), configMap(tmpl), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func readConf(t *testing.T, a *agent) string {
	t.Helper()
	b, err := os.ReadFile(a.cfg.confPath())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestConfSourceFollowsConfigMap(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	a, st := confAgent(t, cs)
	// No ConfigMap: today's conflist, byte for byte.
	if err := a.applyConflist(ctx, st, true); err != nil {
		t.Fatal(err)
	}
	want, _ := renderConflist(&a.cfg, &st.d, 0)
	if got := readConf(t, a); got != string(want) {
		t.Fatalf("without a ConfigMap: got\n%s\nwant\n%s", got, want)
	}
	setConfigMap(t, cs, `{"plugins": [{"type": "nodebridge", "mtu": 1400}, {"type": "bandwidth", "capabilities": {"bandwidth": true}}]}`)
	if err := a.applyConflist(ctx, st, false); err != nil || readConf(t, a) != string(want) {
		t.Fatalf("a pass that is not a resync read the ConfigMap (err %v)", err)
	}
	if err := a.applyConflist(ctx, st, true); err != nil {
		t.Fatal(err)
	}
	good := readConf(t, a)
	if !strings.Contains(good, `"mtu": 1400`) || !strings.Contains(good, `"type": "bandwidth"`) {
		t.Fatalf("after the resync: %s", good)
	}
	for i := range 2 { // the second bad read reports nothing new
		setConfigMap(t, cs, `{"plugins": [{"type": "nodebridge", "mtu": "big"}]}`)
		if err := a.applyConflist(ctx, st, true); err != nil {
			t.Fatal(err)
		}
		if got := readConf(t, a); got != good {
			t.Errorf("bad ConfigMap %d: the conflist changed to %s", i, got)
		}
		if !a.metrics.conflistConfigRejected || len(a.events.queue) != 1 {
			t.Errorf("bad ConfigMap %d: metric %v, %d Events queued, want true, 1", i, a.metrics.conflistConfigRejected, len(a.events.queue))
		}
	}
	ev := <-a.events.queue
	if ev.Reason != eventConfigRejected || ev.InvolvedObject.Name != "node-a" || !strings.Contains(ev.Message, "plugins[0].mtu") {
		t.Errorf("Event: %+v", ev)
	}
	setConfigMap(t, cs, `{"plugins": [{"type": "nodebridge", "mtu": 1300}]}`)
	if err := a.applyConflist(ctx, st, true); err != nil || a.metrics.conflistConfigRejected || !strings.Contains(readConf(t, a), `"mtu": 1300`) {
		t.Errorf("fixed ConfigMap: err %v, rejected %v, conflist %s", err, a.metrics.conflistConfigRejected, readConf(t, a))
	}
}

func TestConfSourceBadFromStart(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset(configMap(`not json`))
	a, st := confAgent(t, cs)
	if err := a.applyConflist(ctx, st, true); err == nil || !strings.Contains(err.Error(), "no usable conflist template") {
		t.Errorf("no conflist on disk: got %v", err)
	}
	if err := os.WriteFile(a.cfg.confPath(), []byte("last good\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := a.applyConflist(ctx, st, false); err != nil || readConf(t, a) != "last good\n" {
		t.Errorf("conflist on disk: err %v, file %q", err, readConf(t, a))
	}
	if len(a.events.queue) != 1 {
		t.Errorf("%d Events queued, want 1", len(a.events.queue))
	}
	cs2 := fake.NewClientset(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "nb"}})
	a2, st2 := confAgent(t, cs2)
	if err := a2.applyConflist(ctx, st2, true); err == nil {
		t.Errorf("no key, no conflist on disk: no error")
	}
	if ev := <-a2.events.queue; !strings.Contains(ev.Message, "key cni-conf.json: no such key") {
		t.Errorf("no key: Event %q", ev.Message)
	}
}

func TestConflistConfigMapFlagCheck(t *testing.T) {
	for _, tc := range []struct{ ref, key, want string }{
		{"kube-system/nodebridge-config", "cni-conf.json", ""},
		{"nodebridge-config", "cni-conf.json", "not namespace/name"},
		{"kube-system/Bad_Name", "cni-conf.json", "conflist-configmap"},
		{"kube-system/x", "a/b", "conflist-configmap-key"},
	} {
		c := Config{ConflistConfigMap: tc.ref, ConflistKey: tc.key}
		err := c.checkConflistConfigMap()
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s key %s: got %v, want %q", tc.ref, tc.key, err, tc.want)
		}
	}
}
