package agent

import (
	"encoding/json"
	"strings"
	"testing"
)

// renderTemplate parses tmpl and renders it for a fixed node, decoded.
func renderTemplate(t *testing.T, tmpl string, underlayMTU int) map[string]any {
	t.Helper()
	c := Defaults()
	c.NetworkName, c.Bridge, c.IPAMDataDir, c.IPMasqBackend = "mynet", "br7", "/data", "nftables"
	d := desired{podCIDRs: pfx(t, "10.244.1.0/24"), clusterCIDRs: pfx(t, "10.244.0.0/16")}
	tp, err := parseTemplate([]byte(tmpl))
	if err != nil {
		t.Fatalf("parse %s: %v", tmpl, err)
	}
	b, err := tp.render(&c, &d, underlayMTU)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := tp.render(&c, &d, underlayMTU)
	if string(b) != string(b2) {
		t.Errorf("render not stable:\n%s\n%s", b, b2)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return got
}

func TestTemplateOwnedFieldsWin(t *testing.T) {
	got := renderTemplate(t, `{
		"cniVersion": "0.3.1", "name": "theirs", "disableCheck": true,
		"plugins": [
			{"type": "nodebridge", "bridge": "evil0", "isGateway": false, "ipMasqBackend": "iptables",
			 "nonMasqueradeCIDRs": ["0.0.0.0/1"], "mtu": 1400, "ipMasq": false, "hairpinMode": false, "promiscMode": true,
			 "ipam": {"type": "static", "dataDir": "/tmp", "ranges": [[{"subnet": "192.168.0.0/24"}]]}},
			{"type": "bandwidth", "capabilities": {"bandwidth": true}},
			{"type": "tuning", "sysctl": {"net.ipv4.conf.eth0.accept_redirects": "0"}}
		]}`, 1450)
	want := map[string]any{
		"cniVersion": "1.0.0", "cniVersions": []any{"1.0.0", "1.1.0"}, "name": "mynet", "disableCheck": true,
		"plugins": []any{
			map[string]any{"type": "nodebridge", "bridge": "br7", "isGateway": true, "isDefaultGateway": true,
				"ipMasqBackend": "nftables", "nonMasqueradeCIDRs": []any{"10.244.0.0/16"},
				"mtu": 1400.0, "ipMasq": false, "hairpinMode": false, "promiscMode": true,
				"ipam": map[string]any{"type": "host-local", "dataDir": "/data",
					"ranges": []any{[]any{map[string]any{"subnet": "10.244.1.0/24"}}}}},
			map[string]any{"type": "bandwidth", "capabilities": map[string]any{"bandwidth": true}},
			map[string]any{"type": "tuning", "sysctl": map[string]any{"net.ipv4.conf.eth0.accept_redirects": "0"}},
		},
	}
	w, _ := json.Marshal(want)
	if g, _ := json.Marshal(got); string(g) != string(w) {
		t.Errorf("rendered conflist:\ngot  %s\nwant %s", g, w)
	}
}

func TestTemplateDefaults(t *testing.T) {
	// A bare template: today's switches, the underlay's MTU, no portmap
	// unless the template chains it.
	nb := renderTemplate(t, `{"plugins": [{"type": "nodebridge"}]}`, 1450)["plugins"].([]any)[0].(map[string]any)
	for key, want := range map[string]any{"isDefaultGateway": true, "ipMasq": true, "hairpinMode": true, "mtu": 1450.0} {
		if nb[key] != want {
			t.Errorf("%s = %v, want %v", key, nb[key], want)
		}
	}
	got := renderTemplate(t, `{"plugins": [{"type": "nodebridge"}]}`, 0)
	if _, set := got["plugins"].([]any)[0].(map[string]any)["mtu"]; set || len(got["plugins"].([]any)) != 1 {
		t.Errorf("no underlay MTU: got %v", got)
	}
}

func TestParseTemplateErrors(t *testing.T) {
	for _, tc := range []struct{ name, tmpl, want string }{
		{"not JSON", `mtu: 1400`, "not a JSON object"},
		{"trailing data", `{"plugins": []} {}`, "data after the object"},
		{"no plugins", `{"name": "x"}`, "plugins: missing or null, not a list"},
		{"no nodebridge", `{"plugins": [{"type": "portmap"}]}`, `plugins[0].type: not "nodebridge"`},
		{"nodebridge second", `{"plugins": [{"type": "portmap"}, {"type": "nodebridge"}]}`, `plugins[1].type "nodebridge": the nodebridge plugin must come first`},
		{"twice", `{"plugins": [{"type": "nodebridge"}, {"type": "nodebridge"}]}`, "plugins[1].type"},
		{"plugin not object", `{"plugins": [{"type": "nodebridge"}, 3]}`, "plugins[1]: a number, not an object"},
		{"type path", `{"plugins": [{"type": "nodebridge"}, {"type": "/usr/bin/bandwidth"}]}`, `plugins[1].type "/usr/bin/bandwidth": not a plugin name`},
		{"type dotdot", `{"plugins": [{"type": "nodebridge"}, {"type": ".."}]}`, `plugins[1].type "..": not a plugin name`},
		{"type number", `{"plugins": [{"type": "nodebridge"}, {"type": 7}]}`, "plugins[1].type: a number, not a string"},
		{"mtu string", `{"plugins": [{"type": "nodebridge", "mtu": "1400"}]}`, "plugins[0].mtu: a string, not a number"},
		{"mtu fraction", `{"plugins": [{"type": "nodebridge", "mtu": 1400.5}]}`, "plugins[0].mtu: 1400.5: not an integer"},
		{"mtu small", `{"plugins": [{"type": "nodebridge", "mtu": 20}]}`, "plugins[0].mtu: 20: not an integer from 68"},
		{"ipMasq string", `{"plugins": [{"type": "nodebridge", "ipMasq": "false"}]}`, "plugins[0].ipMasq: a string, not true or false"},
		{"hairpin number", `{"plugins": [{"type": "nodebridge", "hairpinMode": 1}]}`, "plugins[0].hairpinMode: a number, not true or false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseTemplate([]byte(tc.tmpl))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestParseTemplateEveryProblem(t *testing.T) {
	_, err := parseTemplate([]byte(`{"plugins": [{"type": "nodebridge", "mtu": "x", "ipMasq": 1}, {"type": "a/b"}]}`))
	for _, want := range []string{"plugins[0].mtu", "plugins[0].ipMasq", "plugins[1].type"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want it to name %s", err, want)
		}
	}
}
