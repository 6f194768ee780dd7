package rules

import (
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/nftables"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

func TestDefaultFor(t *testing.T) {
	table := func(family nftables.TableFamily, name string) *nftables.Table {
		return &nftables.Table{Name: name, Family: family}
	}
	ip, ip6, inet := nftables.TableFamilyIPv4, nftables.TableFamilyIPv6, nftables.TableFamilyINet
	tests := []struct {
		name   string
		tables []*nftables.Table
		want   string
	}{
		{"empty ruleset", nil, IPTablesName},
		{"ours", []*nftables.Table{table(inet, "nodebridge")}, NFTablesName},
		{"a native firewall", []*nftables.Table{table(inet, "filter"), table(inet, "firewalld")}, NFTablesName},
		{"kube-proxy nftables mode", []*nftables.Table{table(ip, "kube-proxy"), table(ip6, "kube-proxy")}, NFTablesName},
		{"iptables-nft filter", []*nftables.Table{table(ip, "filter")}, IPTablesName},
		{"ip6tables-nft mangle beside ours", []*nftables.Table{table(inet, "nodebridge"), table(ip6, "mangle")}, IPTablesName},
		{"iptables-nft nat beside a native firewall", []*nftables.Table{table(inet, "firewalld"), table(ip, "nat")}, IPTablesName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := defaultFor(tt.tables); got != tt.want {
				t.Errorf("defaultFor = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSelect(t *testing.T) {
	b, err := Select(NFTablesName, nil)
	if nft, ok := b.(*nftPrimary); err != nil || !ok {
		t.Errorf("Select(nftables) = %T, %v; want *nftPrimary", b, err)
	} else if nft.nft == nil || nft.ipt == nil {
		t.Error("Select(nftables) leaves iptables alone, want it to manage the network's iptables rules")
	}
	b, err = Select(IPTablesName, nil)
	if ipt, ok := b.(*iptPrimary); err != nil || !ok {
		t.Errorf("Select(iptables) = %T, %v; want *iptPrimary", b, err)
	} else if ipt.ipt == nil || ipt.nft == nil {
		t.Errorf("Select(iptables) = %+v, want iptables beside an nftables backend that deletes its leftovers", ipt)
	}
	if b, err := Select("ebtables", nil); err == nil {
		t.Errorf("Select(ebtables) = %T, want an error", b)
	}
}

// TestKernelDefaultBackend runs DefaultBackend in a fresh netns as the host
// changes under it.
func TestKernelDefaultBackend(t *testing.T) {
	name := testenv.NewNS(t, "dflt")
	steps := []struct {
		name string
		cmd  []string
		want string
	}{
		{"empty ruleset", nil, IPTablesName},
		{"a native nftables table", []string{"nft", "add table inet fw"}, NFTablesName},
		{"iptables-nft's filter table", []string{"nft", "add table ip filter"}, IPTablesName},
		{"no iptables-nft table left", []string{"nft", "delete table ip filter"}, NFTablesName},
		{"iptables-legacy in use", []string{"iptables-legacy", "-w", "-L", "-n"}, IPTablesName},
	}
	for _, s := range steps {
		if s.cmd != nil {
			testenv.Run(t, name, s.cmd...)
		}
		var got string
		err := ns.WithNetNSPath(testenv.Path(name), func(ns.NetNS) error {
			got = DefaultBackend()
			return nil
		})
		if err != nil {
			t.Fatalf("%s: enter netns: %v", s.name, err)
		}
		if got != s.want {
			t.Errorf("%s: DefaultBackend = %q, want %q", s.name, got, s.want)
		}
	}
}
