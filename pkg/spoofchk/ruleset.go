package spoofchk

import (
	"bytes"
	"fmt"
	"net"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
)

// The MAC spoof check lives in table bridge nodebridge: only the bridge
// family sees a frame as it enters the bridge from a port, Ethernet header
// and all. The table holds one rule for the whole host, whatever the number
// of pods or bridges:
//
//	table bridge nodebridge {
//		set spoofchk_ports { type ifname }
//		set spoofchk_allowed { type ifname . ether_addr }
//		chain prerouting {
//			type filter hook prerouting priority -300; policy accept;
//			iifname @spoofchk_ports iifname . ether saddr != @spoofchk_allowed counter drop
//		}
//	}
//
// A pod is one element in each set, keyed by its host veth: the port is
// checked, and the pair (port, pod MAC) is the only one let through. ADD and
// DEL add and remove elements and never touch the rule. The priority is the
// reference plugin's, ahead of the bridge's own nat and filter chains.
const (
	tableName       = "nodebridge"
	spoofPortsSet   = "spoofchk_ports"
	spoofAllowedSet = "spoofchk_allowed"
	spoofChainName  = "prerouting"
	spoofPriority   = -300
	spoofRuleText   = "iifname @" + spoofPortsSet + " iifname . ether saddr != @" + spoofAllowedSet + " counter drop"
	ifNameSize      = 16 // IFNAMSIZ: the kernel compares interface names as 16 NUL-padded bytes
	macSize         = 6
)

// rule is the one rule: its expressions, and how nft prints it (less the
// comment) so that findings can name it.
type rule struct {
	text  string
	exprs []expr.Any
}

// objects are the table, sets, chain and rule as the kernel must hold
// them.
type objects struct {
	table          *nftables.Table
	ports, allowed *nftables.Set
	chain          *nftables.Chain
	rule           rule
}

// ruleset renders the spoof check's table. The sets carry fixed IDs,
// which only tie a set to the elements queued after it in the same batch:
// left at 0, google/nftables would number them from a package variable, a
// data race between connections.
func ruleset() objects {
	t := &nftables.Table{Name: tableName, Family: nftables.TableFamilyBridge}
	return objects{
		table: t,
		ports: &nftables.Set{Table: t, ID: 1, Name: spoofPortsSet, KeyType: nftables.TypeIFName,
			KeyByteOrder: binaryutil.NativeEndian}, // as nft marks a string key; else it lists the names as ""

		allowed: &nftables.Set{Table: t, ID: 2, Name: spoofAllowedSet, Concatenation: true,
			KeyType: nftables.MustConcatSetType(nftables.TypeIFName, nftables.TypeEtherAddr)},
		chain: &nftables.Chain{Name: spoofChainName, Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRef(spoofPriority)},
		rule: rule{text: spoofRuleText, exprs: ruleExprs()},
	}
}

// ruleExprs is the rule as nft itself compiles spoofRuleText: the
// interface name fills register 1 (16 bytes) and the source MAC the next
// one, so the two registers together are the concatenated key. The lookups
// name their set and carry no set ID: the kernel finds a set by name, even
// one created earlier in the same batch, and reports no ID when read back.
func ruleExprs() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Lookup{SourceRegister: 1, SetName: spoofPortsSet},
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Payload{DestRegister: 2, Base: expr.PayloadBaseLLHeader, Offset: 6, Len: macSize},
		&expr.Lookup{SourceRegister: 1, SetName: spoofAllowedSet, Invert: true},
		&expr.Counter{},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
}

// ruleComment is the rule's UserData, which nft prints as its comment.
func ruleComment() []byte {
	return userdata.AppendString(nil, userdata.TypeComment, "nodebridge: macspoofchk")
}

// validate checks what the kernel would refuse, or mis-key, in p.
func (p Port) validate() error {
	switch {
	case p.IfName == "" || len(p.IfName) >= ifNameSize:
		return fmt.Errorf("port name %q: must be 1 to %d bytes", p.IfName, ifNameSize-1)
	case bytes.IndexByte([]byte(p.IfName), 0) >= 0:
		return fmt.Errorf("port name %q: contains NUL", p.IfName)
	case len(p.MAC) != macSize:
		return fmt.Errorf("port %s: MAC %q is not a 6-byte Ethernet address", p.IfName, p.MAC)
	}
	return nil
}

// portKey is the key of ifname in spoofchk_ports: the name NUL-padded to
// IFNAMSIZ, as meta iifname loads it.
func portKey(ifname string) []byte {
	k := make([]byte, ifNameSize)
	copy(k, ifname)
	return k
}

// allowedKey is the key of (ifname, mac) in spoofchk_allowed: each part
// padded to a whole number of 4-byte registers, as in the registers the rule
// loads.
func allowedKey(ifname string, mac net.HardwareAddr) []byte {
	return append(append(portKey(ifname), mac...), 0, 0)
}

// parsePortKey is the interface name in a spoofchk_ports key.
func parsePortKey(k []byte) (string, bool) {
	if len(k) != ifNameSize {
		return "", false
	}
	return string(bytes.TrimRight(k, "\x00")), true
}

// parseAllowedKey splits a spoofchk_allowed key into name and MAC.
func parseAllowedKey(k []byte) (string, net.HardwareAddr, bool) {
	if len(k) != ifNameSize+8 {
		return "", nil, false
	}
	name, _ := parsePortKey(k[:ifNameSize])
	return name, net.HardwareAddr(bytes.Clone(k[ifNameSize : ifNameSize+macSize])), true
}
