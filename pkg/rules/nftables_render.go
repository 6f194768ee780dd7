package rules

import (
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// NFTTable is the name of the one nftables table the nftables backend owns.
// Its family is inet, so one chain serves IPv4 and IPv6 alike, and nothing
// else in it belongs to anyone else, so a network's chains can be replaced
// or deleted without reading or touching other software's rules.
const NFTTable = "nodebridge"

// nftChain is one of a network's chains as the kernel must hold it.
//
// Each network has two base chains of its own, post-<hash> (nat,
// postrouting, srcnat) and fwd-<hash> (filter, forward, filter), rather than
// jumps from shared base chains: then ensuring or deleting a network touches
// only its own two chains, needs no rule handles and no jump bookkeeping, and
// a network whose chains are missing can never leave a dangling jump behind.
// The price, one netfilter hook entry per chain, is small for the few
// networks a node has.
type nftChain struct {
	chain *nftables.Chain
	rules []nftRule
}

// nftRule is one rule: its expressions, and how nft would print it (less
// counter and comment) so that findings can name it.
type nftRule struct {
	text  string
	exprs []expr.Any
}

// nftChains renders the chains of network n, nat first. Their rules
// mirror the iptables backend's, IPv4 then IPv6: no masquerade towards the
// network's own subnets, multicast or n.NonMasquerade, masquerade from each
// subnet, accept forwarding from and to each subnet. Unlike iptables'
// accepts, those in fwd-<hash> change no verdict, since the chain's policy
// accepts anyway and no chain can overrule another's drop (see crossbackend.go);
// they are kept for the same rule set in both backends, and for their
// counters. With no subnets the chains have no rules, which is all
// DeleteNetwork needs.
func nftChains(n Network) []nftChain {
	t := &nftables.Table{Name: NFTTable, Family: nftables.TableFamilyINet}
	hash := chainHash(n.Name)
	post := nftChain{chain: &nftables.Chain{Name: "post-" + hash, Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource}}
	fwd := nftChain{chain: &nftables.Chain{Name: "fwd-" + hash, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter}}
	for _, v6 := range []bool{false, true} {
		family := familySubnets(n.Subnets, v6)
		if len(family) == 0 {
			continue
		}
		multicast := netip.MustParsePrefix("224.0.0.0/4")
		if v6 {
			multicast = netip.MustParsePrefix("ff00::/8")
		}
		for _, p := range slices.Concat(family, []netip.Prefix{multicast}, exclusions(n, v6)) {
			post.rules = append(post.rules, prefixRule(p, "daddr", "return", &expr.Verdict{Kind: expr.VerdictReturn}))
		}
		for _, p := range family {
			post.rules = append(post.rules, prefixRule(p, "saddr", "masquerade", &expr.Counter{}, &expr.Masq{}))
		}
		for _, p := range family {
			fwd.rules = append(fwd.rules,
				prefixRule(p, "saddr", "accept", &expr.Counter{}, &expr.Verdict{Kind: expr.VerdictAccept}),
				prefixRule(p, "daddr", "accept", &expr.Counter{}, &expr.Verdict{Kind: expr.VerdictAccept}))
		}
	}
	return []nftChain{post, fwd}
}

// prefixRule matches the packet's source ("saddr") or destination ("daddr")
// address against p, then runs then; a /0 matches the family alone. The explicit nfproto match is what nft
// adds on its own for "ip saddr" in an inet table: without it an IPv6 packet
// would be compared at IPv4 offsets.
func prefixRule(p netip.Prefix, field, verdict string, then ...expr.Any) nftRule {
	proto, offset, size := byte(unix.NFPROTO_IPV4), uint32(12), uint32(4)
	text := "ip "
	if p.Addr().Is6() {
		proto, offset, size = unix.NFPROTO_IPV6, 8, 16
		text = "ip6 "
	}
	if field == "daddr" {
		offset += size
	}
	exprs := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
	}
	if p.Bits() == 0 { // every address of the family: the family is the match, as nft has it
		family := map[byte]string{unix.NFPROTO_IPV4: "ipv4", unix.NFPROTO_IPV6: "ipv6"}[proto]
		return nftRule{text: "meta nfproto " + family + " " + verdict, exprs: append(exprs, then...)}
	}
	exprs = append(exprs, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: size})
	if p.Bits() < int(size*8) { // a whole address needs no mask, as nft also does
		exprs = append(exprs, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: size,
			Mask: prefixMask(p.Bits(), int(size)), Xor: make([]byte, size)})
	}
	exprs = append(exprs, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.Masked().Addr().AsSlice()})
	match := p.Masked().String()
	if p.IsSingleIP() {
		match = p.Addr().String() // as nft prints it
	}
	return nftRule{text: text + field + " " + match + " " + verdict, exprs: append(exprs, then...)}
}

// prefixMask is the netmask of a bits-long prefix in an address of size bytes.
func prefixMask(bits, size int) []byte {
	mask := make([]byte, size)
	for i := range bits {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	return mask
}

// nftComment is the UserData every rule of the network carries, which nft
// prints as comment "nodebridge: <name>". The TLV length is one byte, so a
// longer comment is cut (network names are bounded well below that anyway).
func nftComment(name string) []byte {
	c := "nodebridge: " + name
	if len(c) > 250 {
		c = c[:250]
	}
	return userdata.AppendString(nil, userdata.TypeComment, c)
}
