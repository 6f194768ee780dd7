package main_test

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// supportedVersions are the spec versions nodebridge answers, as the
// reference bridge plugin does.
var supportedVersions = []string{"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}

// TestVersions checks that ADD answers in the format of the version asked
// for (0.3.x and 0.4.0 results carry "version" per IP, 1.x results do not)
// and that DEL in that version cleans up.
func TestVersions(t *testing.T) {
	t.Parallel()
	for _, v := range supportedVersions {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, podSubnet)
			p := f.newPod()
			o := f.run(f.callFor("ADD", p, f.conf(v)))
			mustResult(t, o, v)
			var raw struct {
				CNIVersion string           `json:"cniVersion"`
				IPs        []map[string]any `json:"ips"`
			}
			if err := json.Unmarshal(o.Stdout, &raw); err != nil {
				t.Fatalf("decode %s result: %v\n%s", v, err, o.Stdout)
			}
			if raw.CNIVersion != v {
				t.Errorf("result cniVersion %q, want %q", raw.CNIVersion, v)
			}
			if len(raw.IPs) != 1 {
				t.Fatalf("result has %d ips, want 1: %s", len(raw.IPs), o.Stdout)
			}
			ipVersion, has := raw.IPs[0]["version"]
			if pre100 := v < "1.0.0"; pre100 && ipVersion != "4" {
				t.Errorf("%s result: ips[0].version = %v, want \"4\"", v, ipVersion)
			} else if !pre100 && has {
				t.Errorf("%s result: ips[0] has version %v, a pre-1.0.0 field", v, ipVersion)
			}
			mustSucceed(t, f.run(f.callFor("DEL", p, f.conf(v))), "DEL "+v)
			f.assertClean()
		})
	}
}

// TestUnsupportedVersion: a version the plugin does not speak is code 1.
func TestUnsupportedVersion(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"0.2.0", "9.9.9"} {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, podSubnet)
			p := f.newPod()
			e := mustError(t, f.run(f.callFor("ADD", p, f.conf(v))))
			if e.Code != 1 {
				t.Errorf("ADD with cniVersion %s: code %d (%s), want 1", v, e.Code, e.Msg)
			}
			f.assertClean()
		})
	}
}

// TestVersionVerb checks the VERSION answer lists exactly the supported versions.
func TestVersionVerb(t *testing.T) {
	t.Parallel()
	f := newFixture(t, podSubnet)
	o := f.run(call{Command: "VERSION", Conf: []byte(`{"cniVersion":"1.1.0"}`)})
	mustSucceed(t, o, "VERSION")
	var info struct {
		Supported []string `json:"supportedVersions"`
	}
	if err := json.Unmarshal(o.Stdout, &info); err != nil {
		t.Fatalf("decode VERSION answer %s: %v", o.Stdout, err)
	}
	if !slices.Equal(info.Supported, supportedVersions) {
		t.Errorf("supportedVersions %v, want %v", info.Supported, supportedVersions)
	}
}

// TestVersionFlag: `nodebridge --version` prints the version stamped at
// build time ("dev" here) and exits 0, with no CNI environment at all.
func TestVersionFlag(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(pluginBin, "--version")
	cmd.Env = []string{}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("nodebridge --version: %v\n%s", err, stderr.Bytes())
	}
	if string(out) != "nodebridge dev\n" {
		t.Errorf("nodebridge --version printed %q, want %q", out, "nodebridge dev\n")
	}
}

// TestLean: the plugin, exec'd once per pod, links neither client-go nor
// the Prometheus client; only the agent does.
func TestLean(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "k8s.io/") || strings.Contains(pkg, "/prometheus/") {
			t.Errorf("the plugin links %s", pkg)
		}
	}
}
