package rules

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
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
// replies of connections that passed; then, per direction, a verdict map
// sends a packet of an isolated pod (the source for egress, the
// destination for ingress) to its class's chain, which returns for what
// the class's set allows and drops the rest, counted per class and per
// direction (named counters ingress-drops and egress-drops). Its input
// chain holds egress to the node itself (its addresses, its host-network
// pods, Services whose endpoints are those) to the same rules, the node's
// addresses being peers like any other, as upstream's semantics have it;
// neighbour and multicast listener discovery pass. Traffic from the node
// to its pods (kubelet probes) is never filtered: it leaves through the
// output hook, and the pod's replies are established.
//
//	chain forward { ct state established,related accept
//	                ip saddr vmap @out-pods4 ...  ip daddr vmap @in-pods4 ... }
//	chain input   { ct state established,related accept
//	                icmpv6 type 130-143 accept
//	                ip saddr vmap @out-pods4 ... }
//	chain in-3 { ip saddr . meta l4proto . th dport @in-3-4 return
//	             ip6 saddr . meta l4proto . th dport @in-3-6 return
//	             counter counter name "ingress-drops" drop }
func (b *NFTables) EnsurePolicy(ctx context.Context, p Policy) (PolicyObjects, error) {
	var n PolicyObjects
	if err := ctx.Err(); err != nil {
		return n, fmt.Errorf("nftables policy: %w", context.Cause(ctx))
	}
	c, err := b.batchConn()
	if err != nil {
		return n, fmt.Errorf("nftables policy: %w", err)
	}
	defer b.logClose(c.CloseLasting)
	t := policyTable()
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	prio := nftables.ChainPriority(nftPolicyPriority)
	fwd := c.AddChain(&nftables.Chain{Name: "forward", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: &prio})
	c.AddRule(&nftables.Rule{Table: t, Chain: fwd, Exprs: establishedAccept()})
	var ids uint32 // the batch's set IDs
	in := c.AddChain(&nftables.Chain{Name: "input", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: &prio})
	c.AddRule(&nftables.Rule{Table: t, Chain: in, Exprs: establishedAccept()})
	c.AddRule(&nftables.Rule{Table: t, Chain: in, Exprs: discoveryAccept()})
	n.Chains = 2
	for _, d := range []Direction{Egress, Ingress} {
		pc := classify(p.Isolated[d], p.Rules[d])
		c.AddObj(&nftables.CounterObj{Table: t, Name: dropCounter(d)})
		for i, cls := range pc.classes {
			sets, elems, err := addClassChain(c, &ids, t, classChain(d, i+1), d, cls)
			if err != nil {
				return n, err
			}
			n.Chains, n.Sets, n.Elements = n.Chains+1, n.Sets+sets, n.Elements+elems
		}
		for fi, fam := range policyFamilies {
			pods := &nftables.Set{Table: t, Name: directionPrefix(d) + "pods" + fam.suffix, KeyType: fam.addr,
				IsMap: true, DataType: nftables.TypeVerdict}
			var elems []nftables.SetElement
			for _, a := range pc.pods[fi] {
				elems = append(elems, nftables.SetElement{Key: a.addr.AsSlice(),
					VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: classChain(d, a.class)}})
			}
			if err := addSet(c, &ids, pods, elems); err != nil {
				return n, err
			}
			n.Sets, n.Elements = n.Sets+1, n.Elements+len(elems)
			c.AddRule(&nftables.Rule{Table: t, Chain: fwd, Exprs: classJump(fam, d, pods)})
			if d == Egress {
				c.AddRule(&nftables.Rule{Table: t, Chain: in, Exprs: classJump(fam, d, pods)})
			}
		}
	}
	if err := c.Flush(); err != nil {
		return PolicyObjects{}, fmt.Errorf("write nftables table inet %s: %w", NFTPolicyTable, err)
	}
	return n, nil
}

// elementsPerMessage bounds the elements of one netlink message: its
// element list is one attribute, whose length field has 16 bits, and an
// element of an IPv6 cell takes about 80 bytes.
const elementsPerMessage = 512

// addSet queues a set and its elements, the elements in messages of at
// most elementsPerMessage (google/nftables puts them all in one). The
// set's ID, by which the batch's rules name it, is the batch's next
// (*ids): google/nftables would take one from a package-wide counter it
// does not lock, a race between two tables written at once.
// Equivalent to: nft add set ...; nft add element ... (in pieces)
func addSet(c *nftables.Conn, ids *uint32, s *nftables.Set, elems []nftables.SetElement) error {
	*ids++
	s.ID = *ids
	first := elems[:min(len(elems), elementsPerMessage)]
	if err := c.AddSet(s, first); err != nil {
		return fmt.Errorf("nftables set %s: %w", s.Name, err)
	}
	for rest := elems[len(first):]; len(rest) > 0; rest = rest[min(len(rest), elementsPerMessage):] {
		if err := c.SetAddElements(s, rest[:min(len(rest), elementsPerMessage)]); err != nil {
			return fmt.Errorf("nftables set %s: %w", s.Name, err)
		}
	}
	return nil
}

// batchSocketBuffer is the send and receive buffer of the socket a policy
// table is written through: the whole table goes in one sendmsg (one
// transaction), which the default buffer (wmem_default) bounds to about
// 200 KiB; nft itself forces its buffer to the batch's size the same way.
const batchSocketBuffer = 64 << 20

// batchConn is conn with buffers for a batch of batchSocketBuffer bytes.
func (b *NFTables) batchConn() (*nftables.Conn, error) {
	force := func(nc *netlink.Conn) error {
		raw, err := nc.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		if err := raw.Control(func(fd uintptr) {
			serr = errors.Join(unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, batchSocketBuffer),
				unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, batchSocketBuffer))
		}); err != nil {
			return err
		}
		return serr
	}
	c, err := nftables.New(nftables.AsLasting(), nftables.WithNetNSFd(b.netns), nftables.WithSockOptions(force))
	if err != nil {
		return nil, fmt.Errorf("open nftables netlink socket with a %d MiB buffer: %w", batchSocketBuffer>>20, err)
	}
	return c, nil
}

// directionPrefix starts the names of a direction's chains and sets.
func directionPrefix(d Direction) string {
	if d == Egress {
		return "out-"
	}
	return "in-"
}

// classChain names the chain of class id of direction d.
func classChain(d Direction, id int) string { return directionPrefix(d) + strconv.Itoa(id) }

// PolicyHeld counts the chains, sets and set elements of the policy
// table as EnsurePolicy counts what it writes.
// Equivalent to: nft list table inet nodebridge-policy (counted)
func (b *NFTables) PolicyHeld(ctx context.Context) (PolicyObjects, error) {
	var n PolicyObjects
	c, err := b.policyConn(ctx, "nftables policy objects")
	if c == nil {
		return n, err
	}
	defer b.logClose(c.CloseLasting)
	t := policyTable()
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return n, fmt.Errorf("list nftables chains: %w", err)
	}
	for _, ch := range chains {
		if ch.Table.Name == NFTPolicyTable {
			n.Chains++
		}
	}
	if n.Chains == 0 {
		return n, nil
	}
	sets, err := c.GetSets(t)
	if err != nil {
		return n, fmt.Errorf("list sets of nftables table inet %s: %w", NFTPolicyTable, err)
	}
	for _, s := range sets {
		es, err := c.GetSetElements(s)
		if err != nil {
			return n, fmt.Errorf("read nftables set %s: %w", s.Name, err)
		}
		n.Sets, n.Elements = n.Sets+1, n.Elements+len(es)
	}
	return n, nil
}

// policyTable is the policy table, as each call names it.
func policyTable() *nftables.Table {
	return &nftables.Table{Name: NFTPolicyTable, Family: nftables.TableFamilyINet}
}

// policyConn opens the socket of a read or delete of the policy table;
// nil and no error on a kernel without nftables, where there is no table
// to read or delete. what starts its error.
func (b *NFTables) policyConn(ctx context.Context, what string) (*nftables.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, context.Cause(ctx))
	}
	c, err := b.conn()
	if NFTUnavailable(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return c, nil
}

// dropCounter names the counter of what a direction's class chains
// drop: nft list counters shows them.
func dropCounter(d Direction) string { return d.String() + "-drops" }

// PolicyDrops reads the drop counters of the table in place.
// Equivalent to: nft list counters table inet nodebridge-policy
func (b *NFTables) PolicyDrops(ctx context.Context) ([2]uint64, error) {
	var out [2]uint64
	c, err := b.policyConn(ctx, "nftables policy counters")
	if c == nil {
		return out, err
	}
	defer b.logClose(c.CloseLasting)
	objs, err := c.GetObjects(policyTable())
	if errors.Is(err, unix.ENOENT) {
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("read nftables counters of table inet %s: %w", NFTPolicyTable, err)
	}
	for _, o := range objs {
		if ctr, ok := o.(*nftables.CounterObj); ok {
			for _, d := range []Direction{Ingress, Egress} {
				if ctr.Name == dropCounter(d) {
					out[d] = ctr.Packets
				}
			}
		}
	}
	return out, nil
}

// DeletePolicy removes the policy table; absent, or a kernel without
// nftables, is not an error.
// Equivalent to: nft delete table inet nodebridge-policy
func (b *NFTables) DeletePolicy(ctx context.Context) error {
	c, err := b.policyConn(ctx, "delete nftables policy")
	if c == nil {
		return err
	}
	defer b.logClose(c.CloseLasting)
	t := policyTable()
	c.AddTable(t) // so that the delete finds one
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("delete nftables table inet %s: %w", NFTPolicyTable, err)
	}
	return nil
}

// addClassChain queues a class's chain and its sets: per family with
// cells, a set of them and a rule returning what it holds; then a
// counted drop. It returns the sets and elements queued.
func addClassChain(c *nftables.Conn, ids *uint32, t *nftables.Table, name string, d Direction, cls classAllows) (sets, elements int, err error) {
	ch := c.AddChain(&nftables.Chain{Name: name, Table: t})
	for fi, fam := range policyFamilies {
		if len(cls[fi]) == 0 {
			continue
		}
		set := &nftables.Set{Table: t, Name: name + "-" + fam.suffix, Interval: true, Concatenation: true,
			KeyType: nftables.MustConcatSetType(fam.addr, nftables.TypeInetProto, nftables.TypeInetService)}
		var elems []nftables.SetElement
		for _, cell := range cls[fi] {
			elems = append(elems, nftables.SetElement{Key: cellKey(cell, false), KeyEnd: cellKey(cell, true)})
		}
		if err := addSet(c, ids, set, elems); err != nil {
			return 0, 0, err
		}
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: cellReturn(fam, d, set)})
		sets, elements = sets+1, elements+len(elems)
	}
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{&expr.Counter{},
		&expr.Objref{Type: unix.NFT_OBJECT_COUNTER, Name: dropCounter(d)}, &expr.Verdict{Kind: expr.VerdictDrop}}})
	return sets, elements, nil
}

// cellKey is a cell's lower (or, end, upper) bound as the kernel reads
// the concatenation: each field padded to whole 32-bit registers.
func cellKey(cell peerCell, end bool) []byte {
	peer, proto, port := cell.lo, cell.protoLo, cell.portLo
	if end {
		peer, proto, port = cell.hi, cell.protoHi, cell.portHi
	}
	k := peer.AsSlice()
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

// discoveryAccept lets IPv6 neighbour, router and multicast listener
// discovery (ICMPv6 types 130 to 143) reach the node: link-local control
// a pod needs to send anything, which no policy names.
//
//	meta l4proto ipv6-icmp icmpv6 type 130-143 accept
func discoveryAccept() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_ICMPV6}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
		&expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: []byte{130}, ToData: []byte{143}},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}
}

// classJump sends, for one family and direction, a packet of an
// isolated pod to its class's chain:
//
//	meta nfproto ipv4 ip daddr vmap @in-pods4
func classJump(fam policyFamily, d Direction, pods *nftables.Set) []expr.Any {
	off := fam.daddrOff
	if d == Egress {
		off = fam.saddrOff
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{fam.nfproto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: fam.addrLen},
		&expr.Lookup{SourceRegister: 1, SetName: pods.Name, SetID: pods.ID, DestRegister: 0, IsDestRegSet: true},
	}
}

// cellReturn returns, for one family in a class chain, when the packet's
// peer (the destination for egress, the source for ingress), protocol and
// destination port are in the class's set:
//
//	meta nfproto ipv4 ip saddr . meta l4proto . th dport @in-3-4 return
func cellReturn(fam policyFamily, d Direction, set *nftables.Set) []expr.Any {
	off := fam.saddrOff
	if d == Egress {
		off = fam.daddrOff
	}
	words := fam.addrLen / 4
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{fam.nfproto}},
		&expr.Payload{DestRegister: reg32, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: fam.addrLen},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg32 + words},
		&expr.Payload{DestRegister: reg32 + words + 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: reg32, SetName: set.Name, SetID: set.ID},
		&expr.Verdict{Kind: expr.VerdictReturn},
	}
}
