package main_test

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDelAfterInputBroke: a DEL whose ADD-only input broke since the ADD
// (the resolvConf file removed, CNI_ARGS or runtimeConfig asking for an
// address outside the range or a malformed MAC, the ranges changed or now
// invalid) still frees the allocation and removes the veth, in node and
// pod, as the reference plugins do: else the sandbox could never go.
func TestDelAfterInputBroke(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		spoil func(t *testing.T, conf map[string]any, del *call)
	}{
		{"resolvConf removed", func(t *testing.T, conf map[string]any, _ *call) {
			resolv := conf["ipam"].(map[string]any)["resolvConf"].(string)
			if err := os.Remove(resolv); err != nil {
				t.Fatal(err)
			}
		}},
		{"CNI_ARGS IP outside the range", func(_ *testing.T, _ map[string]any, del *call) {
			del.Args = "IgnoreUnknown=1;IP=192.0.2.7"
		}},
		{"CNI_ARGS MAC malformed", func(_ *testing.T, _ map[string]any, del *call) {
			del.Args = "IgnoreUnknown=1;MAC=not-a-mac"
		}},
		{"runtimeConfig.mac malformed", func(_ *testing.T, conf map[string]any, _ *call) {
			conf["runtimeConfig"] = map[string]any{"mac": "zz:zz:zz:zz:zz:zz"}
		}},
		{"ranges changed", func(_ *testing.T, conf map[string]any, _ *call) {
			conf["ipam"].(map[string]any)["subnet"] = "10.99.0.0/24"
		}},
		{"ranges invalid", func(_ *testing.T, conf map[string]any, _ *call) {
			conf["ipam"].(map[string]any)["subnet"] = "10.244.0.0/33"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, podSubnet)
			resolv := filepath.Join(t.TempDir(), "resolv.conf")
			if err := os.WriteFile(resolv, []byte("nameserver 10.96.0.10\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			conf := f.conf("1.1.0")
			conf["ipam"].(map[string]any)["resolvConf"] = resolv
			p := f.newPod()
			mustResult(t, f.run(f.callFor("ADD", p, conf)), "1.1.0")
			if n := len(f.allocations()); n != 1 {
				t.Fatalf("%d allocations after ADD, want 1", n)
			}

			del := f.callFor("DEL", p, conf)
			tc.spoil(t, conf, &del)
			del.Conf = mustJSON(t, conf)
			mustSucceed(t, f.run(del), "DEL after "+tc.name)
			f.assertClean()
			wantOnlyLoopback(t, p)
		})
	}
}
