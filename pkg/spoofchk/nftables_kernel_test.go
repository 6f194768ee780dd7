package spoofchk

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// spoofIn returns a spoof check programming ns, as a separate plugin
// process would have.
func spoofIn(t testing.TB, ns string) *NFTables {
	t.Helper()
	s := New(t.Logf)
	s.netns = testenv.FD(t, ns)
	return s
}

// nftGen reads the nftables ruleset generation of s's netns, which every
// commit advances: equal before and after a call, it shows the call wrote
// nothing. The probe lives here, not beside the rules package's reader,
// because no production code of this package needs it.
//
// Equivalent to: nft list ruleset | head -0 (the GETGEN that starts every nft dump)
func nftGen(t *testing.T, s *NFTables) uint32 {
	t.Helper()
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: s.netns})
	if err != nil {
		t.Fatalf("dial nfnetlink: %v", err)
	}
	defer c.Close()
	replies, err := c.Execute(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETGEN), Flags: netlink.Request},
		Data:   []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0},
	})
	if err != nil || len(replies) != 1 || len(replies[0].Data) < 4 {
		t.Fatalf("read nftables generation: %v (%d replies)", err, len(replies))
	}
	ad, err := netlink.NewAttributeDecoder(replies[0].Data[4:])
	if err != nil {
		t.Fatalf("decode nftables generation: %v", err)
	}
	ad.ByteOrder = binary.BigEndian
	for ad.Next() {
		if ad.Type() == unix.NFTA_GEN_ID {
			return ad.Uint32()
		}
	}
	t.Fatal("nftables generation: no NFTA_GEN_ID in the reply")
	return 0
}

// spoofView is table bridge nodebridge in a netns as nft lists it.
type spoofView struct {
	table   bool
	rules   []string // chain prerouting's rules, counter values dropped
	ports   []string // sorted
	allowed []string // "PORT . MAC", sorted
}

// viewSpoof lists table bridge nodebridge in ns with nft.
func viewSpoof(t *testing.T, ns string) spoofView {
	t.Helper()
	if !strings.Contains(testenv.Run(t, ns, "nft", "list", "tables"), "table bridge nodebridge\n") {
		return spoofView{}
	}
	var doc struct {
		Nftables []struct {
			Set *struct {
				Name string            `json:"name"`
				Elem []json.RawMessage `json:"elem"`
			} `json:"set"`
			Rule *json.RawMessage `json:"rule"`
		} `json:"nftables"`
	}
	out := testenv.Run(t, ns, "nft", "-j", "list", "table", "bridge", "nodebridge")
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("decode nft -j list table bridge nodebridge: %v\n%s", err, out)
	}
	v := spoofView{table: true, rules: spoofRuleLines(t, ns)}
	for _, o := range doc.Nftables {
		if o.Set == nil {
			continue
		}
		for _, e := range o.Set.Elem {
			v.addElement(t, o.Set.Name, e)
		}
	}
	slices.Sort(v.ports)
	slices.Sort(v.allowed)
	return v
}

// addElement records one element of nft's JSON: a string, or {"concat": [...]}.
func (v *spoofView) addElement(t *testing.T, set string, e json.RawMessage) {
	t.Helper()
	var name string
	var concat struct {
		Concat []string `json:"concat"`
	}
	switch {
	case set == spoofPortsSet && json.Unmarshal(e, &name) == nil:
		v.ports = append(v.ports, name)
	case set == spoofAllowedSet && json.Unmarshal(e, &concat) == nil && len(concat.Concat) == 2:
		v.allowed = append(v.allowed, concat.Concat[0]+" . "+concat.Concat[1])
	default:
		t.Errorf("unexpected element %s in set %s", e, set)
	}
}

// spoofRuleLines lists chain prerouting's rules as nft prints them.
func spoofRuleLines(t *testing.T, ns string) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "nft", "list", "chain", "bridge", "nodebridge", "prerouting").Output()
	if err != nil {
		return nil // the table without its chain
	}
	counter := regexp.MustCompile(`counter packets \d+ bytes \d+`)
	var rules []string
	for l := range strings.Lines(string(out)) {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "table ") && !strings.HasPrefix(l, "chain ") && !strings.HasPrefix(l, "type ") && l != "}" {
			rules = append(rules, counter.ReplaceAllString(l, "counter"))
		}
	}
	return rules
}

// wantRule is the one rule as nft prints it.
const wantRule = `iifname @spoofchk_ports iifname . ether saddr != @spoofchk_allowed counter drop comment "nodebridge: macspoofchk"`

// sameView fails t unless v holds exactly one rule and the given elements.
func sameView(t *testing.T, when string, v spoofView, ports ...Port) {
	t.Helper()
	var wantPorts, wantAllowed []string
	for _, p := range ports {
		wantPorts = append(wantPorts, p.IfName)
		wantAllowed = append(wantAllowed, p.IfName+" . "+p.MAC.String())
	}
	slices.Sort(wantPorts)
	slices.Sort(wantAllowed)
	if !v.table || !slices.Equal(v.rules, []string{wantRule}) {
		t.Errorf("%s: table %t, rules %q, want exactly [%s]", when, v.table, v.rules, wantRule)
	}
	if !slices.Equal(v.ports, wantPorts) || !slices.Equal(v.allowed, wantAllowed) {
		t.Errorf("%s: ports %q allowed %q, want %q and %q", when, v.ports, v.allowed, wantPorts, wantAllowed)
	}
}

// testPort is a port named nb<i> allowing 02:00:00:00:00:<i>.
func testPort(i int) Port {
	return Port{IfName: fmt.Sprintf("nb%02x", i), MAC: net.HardwareAddr{2, 0, 0, 0, 0, byte(i)}}
}

func TestSpoofKernelLifecycle(t *testing.T) {
	ns := testenv.NewNS(t, "spoof")
	s := spoofIn(t, ns)
	a, b := testPort(0xa), testPort(0xb)
	if err := s.DeletePort(t.Context(), a.IfName); err != nil {
		t.Errorf("DeletePort without the table: %v", err)
	}
	if err := s.CheckPort(t.Context(), a); !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "table bridge nodebridge: missing") {
		t.Errorf("CheckPort without the table: %v, want ErrMissing naming the table", err)
	}
	for _, p := range []Port{a, b} {
		if err := s.EnsurePort(t.Context(), p); err != nil {
			t.Fatalf("EnsurePort %s: %v", p.IfName, err)
		}
	}
	sameView(t, "after EnsurePort a, b", viewSpoof(t, ns), a, b)
	for _, p := range []Port{a, b} {
		if err := s.CheckPort(t.Context(), p); err != nil {
			t.Errorf("CheckPort %s: %v", p.IfName, err)
		}
	}
	gen := nftGen(t, s)
	if err := s.EnsurePort(t.Context(), a); err != nil {
		t.Fatalf("second EnsurePort a: %v", err)
	}
	if now := nftGen(t, s); now != gen {
		t.Errorf("second EnsurePort a committed: generation %d -> %d, want a read-only call", gen, now)
	}
	testSpoofDelete(t, ns, s, a, b)
}

// testSpoofDelete removes a then b, each twice, from a table holding both.
func testSpoofDelete(t *testing.T, ns string, s *NFTables, a, b Port) {
	t.Helper()
	if err := s.DeletePort(t.Context(), a.IfName); err != nil {
		t.Fatalf("DeletePort a: %v", err)
	}
	sameView(t, "after DeletePort a", viewSpoof(t, ns), b)
	err := s.CheckPort(t.Context(), a)
	if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "port nb0a MAC 02:00:00:00:00:0a: not in") {
		t.Errorf("CheckPort a after its delete: %v, want ErrMissing naming port and MAC", err)
	}
	gen := nftGen(t, s)
	if err := s.DeletePort(t.Context(), a.IfName); err != nil {
		t.Errorf("second DeletePort a: %v", err)
	}
	if now := nftGen(t, s); now != gen {
		t.Errorf("second DeletePort a committed: generation %d -> %d", gen, now)
	}
	if err := s.DeletePort(t.Context(), b.IfName); err != nil {
		t.Fatalf("DeletePort b: %v", err)
	}
	// The table, sets, chain and rule stay, empty (see NFTables).
	sameView(t, "after DeletePort b", viewSpoof(t, ns))
}

// TestSpoofKernelNewMAC: ensuring a port with another MAC replaces the MAC
// it allows, in one batch.
func TestSpoofKernelNewMAC(t *testing.T) {
	ns := testenv.NewNS(t, "spoof")
	s := spoofIn(t, ns)
	a := testPort(0xa)
	moved := Port{IfName: a.IfName, MAC: net.HardwareAddr{2, 0, 0, 0, 0, 0xee}}
	for _, p := range []Port{a, moved} {
		if err := s.EnsurePort(t.Context(), p); err != nil {
			t.Fatalf("EnsurePort %s %s: %v", p.IfName, p.MAC, err)
		}
	}
	sameView(t, "after the new MAC", viewSpoof(t, ns), moved)
	if err := s.CheckPort(t.Context(), a); err == nil || !strings.Contains(err.Error(), "also allows MAC 02:00:00:00:00:ee") {
		t.Errorf("CheckPort with the old MAC: %v, want the new MAC named", err)
	}
}

// TestSpoofKernelRepair breaks the table by hand, as an operator might, and
// checks that CheckPort names what broke and EnsurePort mends it.
func TestSpoofKernelRepair(t *testing.T) {
	a := testPort(0xa)
	tests := []struct {
		name  string
		nft   []string // commands, each one nft invocation
		finds string
	}{
		{"allowed element deleted", []string{`delete element bridge nodebridge spoofchk_allowed { "nb0a" . 02:00:00:00:00:0a }`},
			"port nb0a MAC 02:00:00:00:00:0a: not in nftables set bridge nodebridge spoofchk_allowed"},
		{"port element deleted", []string{`delete element bridge nodebridge spoofchk_ports { "nb0a" }`},
			"port nb0a (MAC 02:00:00:00:00:0a): not in nftables set bridge nodebridge spoofchk_ports"},
		{"another MAC allowed", []string{`add element bridge nodebridge spoofchk_allowed { "nb0a" . 02:00:00:00:00:ff }`},
			"also allows MAC 02:00:00:00:00:ff"},
		{"chain flushed", []string{"flush chain bridge nodebridge prerouting"}, "missing rule"},
		{"rule doubled", []string{"add rule bridge nodebridge prerouting " + spoofRuleText}, "2 rules"},
		{"rule without counter", []string{"flush chain bridge nodebridge prerouting",
			`add rule bridge nodebridge prerouting iifname @spoofchk_ports iifname . ether saddr != @spoofchk_allowed drop comment "nodebridge: macspoofchk"`},
			"differs from"},
		{"chain priority changed", []string{"delete chain bridge nodebridge prerouting",
			"add chain bridge nodebridge prerouting { type filter hook prerouting priority 0; }"}, "priority 0; policy accept, want type filter hook 0 priority -300"},
		{"table deleted", []string{"delete table bridge nodebridge"}, "table bridge nodebridge: missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := testenv.NewNS(t, "spoof")
			s := spoofIn(t, ns)
			if err := s.EnsurePort(t.Context(), a); err != nil {
				t.Fatalf("EnsurePort: %v", err)
			}
			for _, cmd := range tt.nft {
				testenv.Run(t, ns, "nft", cmd)
			}
			err := s.CheckPort(t.Context(), a)
			if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), tt.finds) {
				t.Fatalf("CheckPort: %v, want ErrMissing with %q", err, tt.finds)
			}
			if err := s.EnsurePort(t.Context(), a); err != nil {
				t.Fatalf("EnsurePort to repair: %v", err)
			}
			if err := s.CheckPort(t.Context(), a); err != nil {
				t.Errorf("CheckPort after the repair: %v", err)
			}
			sameView(t, "after the repair", viewSpoof(t, ns), a)
		})
	}
}

// TestSpoofKernelConcurrent: eight processes' worth of EnsurePort on an
// empty netns, then as many DeletePort, each on its own socket. All ports
// must be there, then gone, under exactly one rule.
func TestSpoofKernelConcurrent(t *testing.T) {
	ns := testenv.NewNS(t, "spoof")
	const n = 8
	ports := make([]Port, n)
	for i := range ports {
		ports[i] = testPort(i + 1)
	}
	race := func(name string, op func(*NFTables, Port) error) {
		t.Helper()
		checks := make([]*NFTables, n)
		for i := range checks {
			checks[i] = spoofIn(t, ns)
		}
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { errs[i] = op(checks[i], ports[i]) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("%s %s: %v", name, ports[i].IfName, err)
			}
		}
	}
	race("EnsurePort", func(s *NFTables, p Port) error { return s.EnsurePort(t.Context(), p) })
	sameView(t, "after the racing EnsurePort", viewSpoof(t, ns), ports...)
	race("DeletePort", func(s *NFTables, p Port) error { return s.DeletePort(t.Context(), p.IfName) })
	sameView(t, "after the racing DeletePort", viewSpoof(t, ns))
}
