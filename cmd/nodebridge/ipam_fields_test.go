package main_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"
)

// TestIPAMFields checks each host-local field and way of requesting an address.
func TestIPAMFields(t *testing.T) {
	t.Parallel()
	runFieldCases(t, []fieldCase{
		{"rangeStart and rangeEnd", setIPAMFields(map[string]any{"rangeStart": "10.244.0.100", "rangeEnd": "10.244.0.110"}),
			wantAddr("10.244.0.100")},
		{"gateway", setIPAMFields(map[string]any{"gateway": "10.244.0.254"}),
			func(t *testing.T, f *fixture, _ pod, res *current.Result) {
				br := ipAddrs(t, f.node, "dev", f.bridge)[0]
				if res.IPs[0].Gateway.String() != "10.244.0.254" || !br.hasAddr("10.244.0.254", 24) {
					t.Errorf("result gateway %s, bridge %+v; want 10.244.0.254 in both", res.IPs[0].Gateway, br.AddrInfo)
				}
			}},
		{"ranges, dual stack", setIPAMFields(map[string]any{"subnet": nil, "ranges": []any{
			[]any{map[string]any{"subnet": "10.244.0.0/24"}},
			[]any{map[string]any{"subnet": "fd00:10:244::/64"}},
		}}), wantDualStack},
		{"routes with gw", setIPAMFields(map[string]any{"routes": []any{
			map[string]any{"dst": "0.0.0.0/0"},
			map[string]any{"dst": "192.0.2.0/24", "gw": "10.244.0.254"},
		}}), func(t *testing.T, _ *fixture, p pod, _ *current.Result) {
			if via, _ := route(t, p.ns, "192.0.2.0/24"); via != "10.244.0.254" {
				t.Errorf("route to 192.0.2.0/24 via %q, want 10.244.0.254", via)
			}
		}},
		{"resolvConf", func(f *fixture, conf map[string]any, c *call) {
			setIPAMFields(map[string]any{"resolvConf": writeResolvConf(f.t)})(f, conf, c)
		}, func(t *testing.T, _ *fixture, _ pod, res *current.Result) {
			d := res.DNS
			if !slices.Equal(d.Nameservers, []string{"10.96.0.10"}) || !slices.Contains(d.Search, "svc.cluster.local") || !slices.Contains(d.Options, "ndots:5") {
				t.Errorf("result dns %+v, want the resolv.conf's nameserver, search and options", d)
			}
		}},
		{"runtimeConfig.ips", func(_ *fixture, conf map[string]any, _ *call) {
			conf["runtimeConfig"] = map[string]any{"ips": []string{"10.244.0.77/24"}}
		}, wantAddr("10.244.0.77")},
		{"args.cni.ips", func(_ *fixture, conf map[string]any, _ *call) {
			conf["args"] = map[string]any{"cni": map[string]any{"ips": []string{"10.244.0.78"}}}
		}, wantAddr("10.244.0.78")},
		{"CNI_ARGS IP=", func(_ *fixture, _ map[string]any, c *call) { c.Args = "IgnoreUnknown=1;IP=10.244.0.79" },
			wantAddr("10.244.0.79")},
		{"runtimeConfig.ipRanges", func(f *fixture, conf map[string]any, c *call) {
			setIPAMFields(map[string]any{"subnet": nil})(f, conf, c)
			conf["runtimeConfig"] = map[string]any{"ipRanges": []any{[]any{map[string]any{"subnet": "10.245.0.0/24"}}}}
		}, wantAddr("10.245.0.2")},
	})
}

// setIPAMFields sets fields of the ipam section; a nil value deletes the field.
func setIPAMFields(fields map[string]any) func(*fixture, map[string]any, *call) {
	return func(_ *fixture, conf map[string]any, _ *call) {
		ipam := conf["ipam"].(map[string]any)
		for k, v := range fields {
			if v == nil {
				delete(ipam, k)
			} else {
				ipam[k] = v
			}
		}
	}
}

// wantDualStack checks one IPv4 and one IPv6 address on the pod, each
// family's gateway on the bridge.
func wantDualStack(t *testing.T, f *fixture, p pod, res *current.Result) {
	if len(res.IPs) != 2 {
		t.Fatalf("result has %d IPs, want 2: %v", len(res.IPs), res.IPs)
	}
	ctr := ipAddrs(t, p.ns, "dev", p.ifName)[0]
	br := ipAddrs(t, f.node, "dev", f.bridge)[0]
	for _, ip := range res.IPs {
		bits, _ := ip.Address.Mask.Size()
		if !ctr.hasAddr(ip.Address.IP.String(), bits) {
			t.Errorf("%s lacks %s: %+v", p.ifName, ip.Address.String(), ctr.AddrInfo)
		}
		if !br.hasAddr(ip.Gateway.String(), bits) {
			t.Errorf("bridge lacks gateway %s/%d: %+v", ip.Gateway, bits, br.AddrInfo)
		}
	}
	if res.IPs[1].Address.IP.To4() != nil {
		t.Errorf("second IP %s, want IPv6 from the second range set", res.IPs[1].Address.String())
	}
}

// wantAddr checks the pod got addr, in the kernel and the result.
func wantAddr(addr string) func(*testing.T, *fixture, pod, *current.Result) {
	return func(t *testing.T, _ *fixture, p pod, res *current.Result) {
		if got := res.IPs[0].Address.IP.String(); got != addr || !ipAddrs(t, p.ns, "dev", p.ifName)[0].hasAddr(addr, 24) {
			t.Errorf("pod address %s (result), want %s/24 in result and on %s", got, addr, p.ifName)
		}
	}
}

// writeResolvConf writes a resolv.conf for ipam.resolvConf and returns its path.
func writeResolvConf(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "resolv.conf")
	body := "nameserver 10.96.0.10\nsearch svc.cluster.local cluster.local\noptions ndots:5\n"
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return path
}
