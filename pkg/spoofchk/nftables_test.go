package spoofchk

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// nftDebug prints an expression of the spoof rule as `nft --debug=netlink`
// prints what it sends.
func nftDebug(t *testing.T, e expr.Any) string {
	t.Helper()
	switch e := e.(type) {
	case *expr.Meta:
		if e.Key != expr.MetaKeyIIFNAME {
			t.Fatalf("meta key %d: not described", e.Key)
		}
		return fmt.Sprintf("[ meta load iifname => reg %d ]", e.Register)
	case *expr.Lookup:
		flags := ""
		if e.Invert {
			flags = " 0x1"
		}
		return fmt.Sprintf("[ lookup reg %d set %s%s ]", e.SourceRegister, e.SetName, flags)
	case *expr.Payload:
		if e.Base != expr.PayloadBaseLLHeader {
			t.Fatalf("payload base %d: not described", e.Base)
		}
		return fmt.Sprintf("[ payload load %db @ link header + %d => reg %d ]", e.Len, e.Offset, e.DestRegister)
	case *expr.Counter:
		return fmt.Sprintf("[ counter pkts %d bytes %d ]", e.Packets, e.Bytes)
	case *expr.Verdict:
		if e.Kind != expr.VerdictDrop {
			t.Fatalf("verdict %d: not described", e.Kind)
		}
		return "[ immediate reg 0 drop ]"
	}
	t.Fatalf("expression %T: not described", e)
	return ""
}

// TestSpoofExprs: the rule's expressions are those nft 1.0.6 sends for
// spoofRuleText (nft --debug=netlink -f), register for register.
func TestSpoofExprs(t *testing.T) {
	want := []string{
		"[ meta load iifname => reg 1 ]",
		"[ lookup reg 1 set spoofchk_ports ]",
		"[ meta load iifname => reg 1 ]",
		"[ payload load 6b @ link header + 6 => reg 2 ]",
		"[ lookup reg 1 set spoofchk_allowed 0x1 ]",
		"[ counter pkts 0 bytes 0 ]",
		"[ immediate reg 0 drop ]",
	}
	var got []string
	for _, e := range ruleset().rule.exprs {
		got = append(got, nftDebug(t, e))
	}
	if !slices.Equal(got, want) {
		t.Errorf("spoof rule:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestSpoofKeys: keys are laid out as the rule's registers hold them (and
// as nft dumps an element it added itself), and read back.
func TestSpoofKeys(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0x11, 0x22, 0x33, 0x44, 0x55}
	wantPort := append([]byte("nbabc"), make([]byte, 11)...)
	if got := portKey("nbabc"); !bytes.Equal(got, wantPort) {
		t.Errorf("portKey = % x, want % x", got, wantPort)
	}
	wantAllowed := append(bytes.Clone(wantPort), 0x02, 0x11, 0x22, 0x33, 0x44, 0x55, 0, 0)
	if got := allowedKey("nbabc", mac); !bytes.Equal(got, wantAllowed) {
		t.Errorf("allowedKey = % x, want % x", got, wantAllowed)
	}
	if name, ok := parsePortKey(wantPort); !ok || name != "nbabc" {
		t.Errorf("parsePortKey = %q, %t", name, ok)
	}
	if name, got, ok := parseAllowedKey(wantAllowed); !ok || name != "nbabc" || got.String() != mac.String() {
		t.Errorf("parseAllowedKey = %q, %s, %t", name, got, ok)
	}
	if _, ok := parsePortKey(wantAllowed); ok {
		t.Error("parsePortKey took a 24-byte key")
	}
	if _, _, ok := parseAllowedKey(wantPort); ok {
		t.Error("parseAllowedKey took a 16-byte key")
	}
}

func TestPortValidate(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	tests := []struct {
		name string
		p    Port
		want string // "" for valid
	}{
		{"valid", Port{"nb0123456789abc", mac}, ""},
		{"empty name", Port{"", mac}, `port name "": must be 1 to 15 bytes`},
		{"name too long", Port{"nb0123456789abcd", mac}, "must be 1 to 15 bytes"},
		{"NUL in name", Port{"nb\x00x", mac}, "contains NUL"},
		{"no MAC", Port{"nb01", nil}, "port nb01: MAC"},
		{"EUI-64", Port{"nb01", net.HardwareAddr{2, 0, 0, 0, 0, 0, 0, 1}}, "not a 6-byte Ethernet address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.validate()
			if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

// intactState is what a read shows after EnsurePort of ports.
func intactState(ports ...Port) state {
	o := ruleset()
	st := state{table: true, chain: o.chain,
		rules:   []*nftables.Rule{{Exprs: o.rule.exprs, UserData: ruleComment()}},
		sets:    map[string]*nftables.Set{spoofPortsSet: o.ports, spoofAllowedSet: o.allowed},
		allowed: map[string][]net.HardwareAddr{}}
	for _, p := range ports {
		st.ports = append(st.ports, p.IfName)
		st.allowed[p.IfName] = append(st.allowed[p.IfName], p.MAC)
	}
	return st
}

// queued runs queue on a connection that records, instead of sending, the
// batch it flushes, and returns each message as "TYPE [set]".
func queued(t *testing.T, queue func(*nftables.Conn) error) []string {
	t.Helper()
	var got []string
	c, err := nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
		for _, m := range req {
			if name := nftMsgName(m); name != "" {
				got = append(got, name)
			}
		}
		return req, nil
	}))
	if err != nil {
		t.Fatalf("test connection: %v", err)
	}
	if err := queue(c); err != nil {
		t.Fatalf("queue: %v", err)
	}
	if err := c.Flush(); err != nil {
		t.Fatalf("flush to the recorder: %v", err)
	}
	return got
}

// nftMsgName names an nftables message, and the set of an element message.
func nftMsgName(m netlink.Message) string {
	names := map[int]string{unix.NFT_MSG_NEWTABLE: "NEWTABLE", unix.NFT_MSG_NEWSET: "NEWSET", unix.NFT_MSG_NEWCHAIN: "NEWCHAIN",
		unix.NFT_MSG_DELCHAIN: "DELCHAIN", unix.NFT_MSG_DELRULE: "FLUSHCHAIN", unix.NFT_MSG_NEWRULE: "NEWRULE",
		unix.NFT_MSG_NEWSETELEM: "NEWSETELEM", unix.NFT_MSG_DELSETELEM: "DELSETELEM"}
	if m.Header.Type>>8 != unix.NFNL_SUBSYS_NFTABLES {
		return "" // batch begin and end
	}
	name := names[int(m.Header.Type&0xff)]
	for _, set := range []string{spoofPortsSet, spoofAllowedSet} {
		if bytes.Contains(m.Data, []byte(set+"\x00")) && name != "NEWRULE" {
			name += " " + set
		}
	}
	return name
}

// TestSpoofQueue: one batch holds exactly the writes a read calls for, and a
// read showing everything in place calls for none.
func TestSpoofQueue(t *testing.T) {
	a, b := testPort(0xa), testPort(0xb)
	moved := Port{IfName: a.IfName, MAC: net.HardwareAddr{2, 0, 0, 0, 0, 0xee}}
	doubled := intactState(b)
	doubled.rules = append(doubled.rules, doubled.rules[0])
	reprioritized := intactState(a)
	reprioritized.chain = &nftables.Chain{Name: spoofChainName, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityFilter}
	tests := []struct {
		name string
		st   state
		want []string
	}{
		{"empty table", state{}, []string{"NEWTABLE", "NEWSET spoofchk_ports", "NEWSET spoofchk_allowed",
			"NEWCHAIN", "FLUSHCHAIN", "NEWRULE", "NEWSETELEM spoofchk_ports", "NEWSETELEM spoofchk_allowed"}},
		{"another port present", intactState(b), []string{"NEWSETELEM spoofchk_ports", "NEWSETELEM spoofchk_allowed"}},
		{"port present", intactState(b, a), nil},
		{"port with another MAC", intactState(moved), []string{"DELSETELEM spoofchk_allowed", "NEWSETELEM spoofchk_allowed"}},
		{"rule doubled", doubled, []string{"FLUSHCHAIN", "NEWRULE", "NEWSETELEM spoofchk_ports", "NEWSETELEM spoofchk_allowed"}},
		{"chain priority changed", reprioritized, []string{"DELCHAIN", "NEWCHAIN", "FLUSHCHAIN", "NEWRULE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ruleset()
			got := queued(t, func(c *nftables.Conn) error {
				return errors.Join(queueStructure(c, o, tt.st), queuePort(c, o, tt.st, a))
			})
			if !slices.Equal(got, tt.want) {
				t.Errorf("queued %q, want %q", got, tt.want)
			}
			findings := append(tt.st.structureDiffs(o), tt.st.portDiffs(a)...)
			if (len(findings) == 0) != (len(tt.want) == 0) {
				t.Errorf("findings %v, while the batch is %q", findings, tt.want)
			}
			for _, f := range findings {
				if !errors.Is(f, ErrMissing) {
					t.Errorf("finding %v does not wrap ErrMissing", f)
				}
			}
		})
	}
}

// TestSpoofQueueRefusesForeignSet: a set of our name keyed by another type
// is reported, not rebuilt with its elements lost.
func TestSpoofQueueRefusesForeignSet(t *testing.T) {
	st := intactState()
	st.sets[spoofAllowedSet] = &nftables.Set{Name: spoofAllowedSet, KeyType: nftables.TypeEtherAddr}
	err := queueStructure(nil, ruleset(), st)
	if err == nil || !strings.Contains(err.Error(), "spoofchk_allowed: type ether_addr (6 bytes), want ifname . ether_addr") {
		t.Errorf("queueStructure with a foreign set: %v", err)
	}
}
