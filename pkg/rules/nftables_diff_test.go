package rules

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// readBack is the state a read would show right after want was written:
// the chains as the kernel reports them (with a policy), each rule with a
// handle and the network's comment.
func readBack(want []nftChain, network string) nftState {
	st := nftState{chains: map[string]*nftables.Chain{}, rules: map[string][]*nftables.Rule{}}
	accept := nftables.ChainPolicyAccept
	handle := uint64(1)
	for _, w := range want {
		c := *w.chain
		c.Policy = &accept
		st.chains[c.Name] = &c
		for _, r := range w.rules {
			handle++
			st.rules[c.Name] = append(st.rules[c.Name], &nftables.Rule{Handle: handle, Exprs: r.exprs, UserData: nftComment(network)})
		}
	}
	return st
}

func TestNFTDifferences(t *testing.T) {
	n := Network{Name: "mynet", Subnets: prefixes("10.22.0.0/16", "fd00:22::/64")}
	post, fwd := "post-11c844f95e", "fwd-11c844f95e"
	drop := nftables.ChainPolicyDrop
	tests := []struct {
		name   string
		damage func(st nftState)
		want   []string // one substring per finding
	}{
		{"as written", func(nftState) {}, nil},
		{"counted traffic", func(st nftState) {
			st.rules[fwd][0].Exprs = append(st.rules[fwd][0].Exprs[:len(st.rules[fwd][0].Exprs)-2:len(st.rules[fwd][0].Exprs)-2],
				&expr.Counter{Packets: 7, Bytes: 700}, &expr.Verdict{Kind: expr.VerdictAccept})
		}, nil},
		{"chain missing", func(st nftState) { delete(st.chains, post) }, []string{post + ` of network "mynet": chain missing`}},
		{"chain flushed", func(st nftState) { st.rules[fwd] = nil }, []string{
			`missing rule 1 "ip saddr 10.22.0.0/16 accept"`, `missing rule 2 "ip daddr 10.22.0.0/16 accept"`,
			`missing rule 3 "ip6 saddr fd00:22::/64 accept"`, `missing rule 4 "ip6 daddr fd00:22::/64 accept"`}},
		{"extra rule", func(st nftState) {
			st.rules[fwd] = append(st.rules[fwd], &nftables.Rule{Handle: 99, Exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}})
		}, []string{fwd + ` of network "mynet": unexpected rule 5 (handle 99)`}},
		{"other verdict", func(st nftState) {
			r := st.rules[post][2]
			r.Exprs = append(r.Exprs[:len(r.Exprs)-1:len(r.Exprs)-1], &expr.Verdict{Kind: expr.VerdictAccept})
		}, []string{`rule 3 differs from "ip saddr 10.22.0.0/16 masquerade"`}},
		{"other comment", func(st nftState) { st.rules[post][0].UserData = nftComment("other") }, []string{`rule 1 "ip daddr 10.22.0.0/16 return": comment`}},
		{"policy drop", func(st nftState) { st.chains[fwd].Policy = &drop }, []string{
			"type filter hook forward priority 0; policy drop, want type filter hook forward priority 0; policy accept"}},
		{"other priority", func(st nftState) { st.chains[post].Priority = nftables.ChainPriorityNATDest }, []string{
			"type nat hook postrouting priority -100; policy accept, want type nat hook postrouting priority 100; policy accept"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := nftChains(n)
			st := readBack(nftChains(n), n.Name)
			tt.damage(st)
			got := nftDifferences(want, st, n.Name)
			if len(got) != len(tt.want) {
				t.Fatalf("%d findings, want %d:\n%v", len(got), len(tt.want), errors.Join(got...))
			}
			for i, err := range got {
				if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), tt.want[i]) {
					t.Errorf("finding %d = %q, want an ErrMissing containing %q", i, err, tt.want[i])
				}
			}
			for _, w := range want {
				if differs, found := nftChainDiffers(w, st, nftComment(n.Name)), chainFound(got, w.chain.Name); differs != found {
					t.Errorf("nftChainDiffers(%s) = %v, but findings name it: %v", w.chain.Name, differs, found)
				}
			}
		})
	}
}

// chainFound reports whether a finding names the chain.
func chainFound(findings []error, chain string) bool {
	for _, f := range findings {
		if strings.Contains(f.Error(), " "+chain+" ") {
			return true
		}
	}
	return false
}

func TestDeleteMsgs(t *testing.T) {
	ours := []string{"post-11c844f95e", "fwd-11c844f95e"}
	chain := func(table, name string) *nftables.Chain {
		return &nftables.Chain{Name: name, Table: &nftables.Table{Name: table, Family: nftables.TableFamilyINet}}
	}
	delTable := nftDelTable("nodebridge")
	delPost, delFwd := nftDelChain("nodebridge", ours[0]), nftDelChain("nodebridge", ours[1])
	tests := []struct {
		name string
		all  []*nftables.Chain
		want []netlink.Message
	}{
		{"empty table", nil, []netlink.Message{delTable}},
		{"only ours", []*nftables.Chain{chain("nodebridge", ours[0]), chain("nodebridge", ours[1])}, []netlink.Message{delTable}},
		{"ours beside another network's", []*nftables.Chain{chain("nodebridge", ours[1]), chain("nodebridge", "post-0000000000"),
			chain("nodebridge", ours[0])}, []netlink.Message{delFwd, delPost}},
		{"another network's only", []*nftables.Chain{chain("nodebridge", "fwd-0000000000")}, nil},
		{"a same-named chain in another table", []*nftables.Chain{chain("firewalld", ours[0]), chain("nodebridge", "fwd-0000000000")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := deleteMsgs(tt.all, ours)
			if len(got) != len(tt.want) {
				t.Fatalf("%d messages, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if got[i].Header.Type != tt.want[i].Header.Type || string(got[i].Data) != string(tt.want[i].Data) {
					t.Errorf("message %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// TestNFTMessages pins the wire form of the hand-built messages: the
// nfgenmsg header, then NUL-terminated name attributes.
func TestNFTMessages(t *testing.T) {
	m := nftDelChain("nodebridge", "fwd-x")
	if want := netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_DELCHAIN); m.Header.Type != want {
		t.Errorf("delete chain type %#x, want %#x", m.Header.Type, want)
	}
	want := []byte{unix.NFPROTO_INET, 0, 0, 0,
		15, 0, unix.NFTA_CHAIN_TABLE, 0, 'n', 'o', 'd', 'e', 'b', 'r', 'i', 'd', 'g', 'e', 0, 0,
		10, 0, unix.NFTA_CHAIN_NAME, 0, 'f', 'w', 'd', '-', 'x', 0, 0, 0}
	if string(m.Data) != string(want) {
		t.Errorf("delete chain data\ngot  % x\nwant % x", m.Data, want)
	}
	if got := nfgenmsg(unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES); string(got) != "\x00\x00\x00\x0a" {
		t.Errorf("batch nfgenmsg = % x, want 00 00 00 0a (subsystem big-endian)", got)
	}
}
