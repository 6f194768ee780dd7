package kubelet

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestReferenceConflistDiffersOnlyInType(t *testing.T) {
	tests := []struct {
		name  string
		cidrs []string
	}{
		{"ipv4", []string{"10.244.1.0/24"}},
		{"dual stack", []string{"10.244.1.0/24", "fd00:10:244:1::/64"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nb, err := Conflist("/data", tt.cidrs...)
			if err != nil {
				t.Fatal(err)
			}
			ref, err := ReferenceConflist("/data", tt.cidrs...)
			if err != nil {
				t.Fatal(err)
			}
			var a, b map[string]any
			if err := json.Unmarshal(nb, &a); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(ref, &b); err != nil {
				t.Fatal(err)
			}
			pa, pb := a["plugins"].([]any)[0].(map[string]any), b["plugins"].([]any)[0].(map[string]any)
			if pa["type"] != "nodebridge" || pb["type"] != "bridge" {
				t.Fatalf("types %v and %v: want nodebridge and bridge", pa["type"], pb["type"])
			}
			pb["type"] = "nodebridge"
			if !reflect.DeepEqual(a, b) {
				t.Errorf("beyond the type, the conflists differ:\nnodebridge %s\nreference  %s", nb, ref)
			}
		})
	}
}

func TestReferenceConflistRejectsBadCIDR(t *testing.T) {
	if _, err := ReferenceConflist("/data", "10.244.1.300/24"); err == nil || !strings.Contains(err.Error(), "10.244.1.300/24") {
		t.Errorf("error %v: want one naming the podCIDR", err)
	}
}

func TestLinkReference(t *testing.T) {
	tools := t.TempDir()
	for _, p := range []string{"bridge", "host-local", "portmap"} {
		if err := os.WriteFile(filepath.Join(tools, p), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	err := LinkReference(dir, tools)
	if err == nil || !strings.Contains(err.Error(), "[loopback]") {
		t.Fatalf("error %v: want one naming loopback, the only plugin missing", err)
	}
	if err := os.WriteFile(filepath.Join(tools, "loopback"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	if err := LinkReference(dir, tools); err != nil {
		t.Fatal(err)
	}
	for _, p := range referencePlugins() {
		if got, err := os.Readlink(filepath.Join(dir, p)); err != nil || got != filepath.Join(tools, p) {
			t.Errorf("%s in bin dir: link to %q (%v), want %s", p, got, err, filepath.Join(tools, p))
		}
	}
}
