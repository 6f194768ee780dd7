package rules

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// NFTPolicyTable is the nftables table of NetworkPolicy enforcement, apart
// from the plugin's: EnsurePolicy replaces it whole, in one transaction.
const NFTPolicyTable = "nodebridge-policy"

// nftPolicyPriority puts the policy chain before the filter chains: a
// drop there wins whatever accepts come after, and an accept there is
// no verdict for them.
const nftPolicyPriority = -10

// The register layout of a concatenated lookup: each field starts on a
// 32-bit register, from NFT_REG32_00.
const reg32 = 8

// policyFamily is what differs between IPv4 and IPv6 in the rendering.
type policyFamily struct {
	suffix   string // of the set names: "4" or "6"
	nfproto  byte
	addr     nftables.SetDatatype
	saddrOff uint32
	daddrOff uint32
	addrLen  uint32
}

var policyFamilies = [2]policyFamily{
	{suffix: "4", nfproto: unix.NFPROTO_IPV4, addr: nftables.TypeIPAddr, saddrOff: 12, daddrOff: 16, addrLen: 4},
	{suffix: "6", nfproto: unix.NFPROTO_IPV6, addr: nftables.TypeIP6Addr, saddrOff: 8, daddrOff: 24, addrLen: 16},
}

// EnsurePolicy makes table inet nodebridge-policy enforce p: one batch
// deletes the table and writes it again, so the kernel switches from the
// old policy to the new at once and never holds none (while it is
// applied, or should the agent stop). Its forward chain accepts the
// replies of connections that passed, then drops what an isolated pod
// sends (egress) or receives (ingress) that no Allow matches.
// Equivalent to: nft -f - <<< 'add table inet nodebridge-policy; delete
// table inet nodebridge-policy; table inet nodebridge-policy { set ... }'
func (b *NFTables) EnsurePolicy(ctx context.Context, p Policy) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("nftables policy: %w", context.Cause(ctx))
	}
	c, err := b.conn()
	if err != nil {
		return fmt.Errorf("nftables policy: %w", err)
	}
	defer b.logClose(c.CloseLasting)
	t := &nftables.Table{Name: NFTPolicyTable, Family: nftables.TableFamilyINet}
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	prio := nftables.ChainPriority(nftPolicyPriority)
	ch := c.AddChain(&nftables.Chain{Name: "forward", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: &prio})
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: establishedAccept()})
	for fi, fam := range policyFamilies {
		for _, d := range []Direction{Egress, Ingress} {
			iso, allow, err := addPolicySets(c, t, fam, d, p, fi)
			if err != nil {
				return err
			}
			c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: policyDropRule(fam, d, iso, allow)})
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("write nftables table inet %s: %w", NFTPolicyTable, err)
	}
	return nil
}

// DeletePolicy removes the policy table; absent, or a kernel without
// nftables, is not an error.
// Equivalent to: nft delete table inet nodebridge-policy
func (b *NFTables) DeletePolicy(ctx context.Context) error {
	c, err := b.conn()
	if NFTUnavailable(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete nftables policy: %w", err)
	}
	defer b.logClose(c.CloseLasting)
	t := &nftables.Table{Name: NFTPolicyTable, Family: nftables.TableFamilyINet}
	c.AddTable(t) // so that the delete finds one
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("delete nftables table inet %s: %w", NFTPolicyTable, err)
	}
	return nil
}

// addPolicySets queues a direction's two sets of one family: the
// isolated pods, and the allowed (pod . peer . protocol . port) intervals.
func addPolicySets(c *nftables.Conn, t *nftables.Table, fam policyFamily, d Direction, p Policy, fi int) (*nftables.Set, *nftables.Set, error) {
	prefix := "in-"
	if d == Egress {
		prefix = "out-"
	}
	iso := &nftables.Set{Table: t, Name: prefix + "isolated" + fam.suffix, KeyType: fam.addr}
	var isoElems []nftables.SetElement
	for _, a := range p.Isolated[d] {
		if familyIndex(a.Is6()) == fi {
			isoElems = append(isoElems, nftables.SetElement{Key: a.AsSlice()})
		}
	}
	if err := c.AddSet(iso, isoElems); err != nil {
		return nil, nil, fmt.Errorf("nftables set %s: %w", iso.Name, err)
	}
	allow := &nftables.Set{Table: t, Name: prefix + "allow" + fam.suffix, Interval: true, Concatenation: true,
		KeyType: nftables.MustConcatSetType(fam.addr, fam.addr, nftables.TypeInetProto, nftables.TypeInetService)}
	var allows []Allow
	for _, a := range p.Allow[d] {
		if familyIndex(a.Pod.Is6()) == fi && familyIndex(a.Peer.Addr().Is6()) == fi {
			allows = append(allows, a)
		}
	}
	var elems []nftables.SetElement
	for _, e := range policyElements(allows) {
		elems = append(elems, nftables.SetElement{Key: elementKey(e, false), KeyEnd: elementKey(e, true)})
	}
	if err := c.AddSet(allow, elems); err != nil {
		return nil, nil, fmt.Errorf("nftables set %s: %w", allow.Name, err)
	}
	return iso, allow, nil
}

// elementKey is an element's lower (or, end, upper) bound as the kernel
// reads a concatenation: each field padded to whole 32-bit registers.
func elementKey(e policyElement, end bool) []byte {
	peer, proto, port := e.Peer.Addr(), e.ProtoLo, e.PortLo
	if end {
		peer, proto, port = lastAddr(e.Peer), e.ProtoHi, e.PortHi
	}
	var k []byte
	k = append(k, e.Pod.AsSlice()...)
	k = append(k, peer.AsSlice()...)
	k = append(k, proto, 0, 0, 0)
	k = binary.BigEndian.AppendUint16(k, port)
	return append(k, 0, 0)
}

// lastAddr is the last address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// establishedAccept: ct state established,related accept.
func establishedAccept() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binary.NativeEndian.AppendUint32(nil, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}
}

// policyDropRule drops, for one family and direction, a packet whose pod
// (the source for egress, the destination for ingress) is isolated and
// whose (pod . peer . protocol . destination port) no allow element holds:
//
//	meta nfproto ipv4 ip daddr @in-isolated4
//	  ip daddr . ip saddr . meta l4proto . th dport != @in-allow4 counter drop
func policyDropRule(fam policyFamily, d Direction, iso, allow *nftables.Set) []expr.Any {
	podOff, peerOff := fam.daddrOff, fam.saddrOff
	if d == Egress {
		podOff, peerOff = fam.saddrOff, fam.daddrOff
	}
	words := fam.addrLen / 4
	podReg, peerReg := uint32(reg32), uint32(reg32)+words
	protoReg, portReg := peerReg+words, peerReg+words+1
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{fam.nfproto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: podOff, Len: fam.addrLen},
		&expr.Lookup{SourceRegister: 1, SetName: iso.Name, SetID: iso.ID},
		&expr.Payload{DestRegister: podReg, Base: expr.PayloadBaseNetworkHeader, Offset: podOff, Len: fam.addrLen},
		&expr.Payload{DestRegister: peerReg, Base: expr.PayloadBaseNetworkHeader, Offset: peerOff, Len: fam.addrLen},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: protoReg},
		&expr.Payload{DestRegister: portReg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: podReg, SetName: allow.Name, SetID: allow.ID, Invert: true},
		&expr.Counter{},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
}
