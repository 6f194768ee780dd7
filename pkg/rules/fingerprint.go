package rules

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"

	"golang.org/x/sys/unix"
)

// Fingerprinter is a Stamper that can also digest just the kernel objects
// its EnsureNetwork reads for one network. The stamp moves with any rule
// of the netns, kube-proxy's resyncs included; the fingerprint moves only
// when one of those objects does. So on a node whose other rules keep
// changing, equal fingerprints still show the network's rules as last
// verified, at the cost of a few small netlink requests instead of a save
// of every table. An empty fingerprint means "unknown": verify.
type Fingerprinter interface {
	Stamper
	Fingerprint(ctx context.Context, n Network) (string, error)
}

var (
	_ Fingerprinter = (*IPTables)(nil)
	_ Fingerprinter = (*NFTables)(nil)
)

// Fingerprint digests n's objects (see scopeOf) where iptables is the
// nf_tables variant; iptables-legacy keeps its rules out of netlink's
// sight, so there it is empty.
func (t *IPTables) Fingerprint(ctx context.Context, n Network) (string, error) {
	if t.variant() != variantNFT {
		return "", nil
	}
	return fingerprint(n.Name, scopeOf(n.Name))
}

// Fingerprint digests the same objects as IPTables' fingerprint, the
// nftables table's chains of n among them. Empty where its stamp is (see
// NFTables.Stamp).
func (b *NFTables) Fingerprint(ctx context.Context, n Network) (string, error) {
	if b.netns != 0 {
		return "", nil
	}
	return fingerprint(n.Name, scopeOf(n.Name))
}

// scopedObject is one chain whose state, and whose rules, an EnsureNetwork
// of some network reads.
type scopedObject struct {
	family byte // unix.NFPROTO_*
	table  string
	chain  string
}

// scopeOf lists every chain either backend's EnsureNetwork of network
// reads, both families: iptables-nft's nat and filter chains of the
// network, the built-in chains that jump to them (POSTROUTING, and FORWARD
// whose policy and DROP rules decide whether nftables needs iptables'
// accept), and the network's two chains in table inet nodebridge. A jump
// into a network chain from anywhere else shows in that chain's use count.
func scopeOf(network string) []scopedObject {
	h := chainHash(network)
	var out []scopedObject
	for _, f := range []byte{unix.NFPROTO_IPV4, unix.NFPROTO_IPV6} {
		out = append(out,
			scopedObject{f, "nat", "NB-POST-" + h}, scopedObject{f, "nat", "POSTROUTING"},
			scopedObject{f, "filter", "NB-FWD-" + h}, scopedObject{f, "filter", "FORWARD"})
	}
	return append(out, scopedObject{unix.NFPROTO_INET, NFTTable, "post-" + h},
		scopedObject{unix.NFPROTO_INET, NFTTable, "fwd-" + h})
}

// clusterScope lists every chain either backend's EnsureCluster reads,
// both families: iptables' NB-AGENT-FWD and FORWARD, which jumps to it and
// whose policy and DROP rules decide whether nftables needs iptables'
// accepts, and the accepts' chain in table inet nodebridge.
func clusterScope() []scopedObject {
	var out []scopedObject
	for _, f := range []byte{unix.NFPROTO_IPV4, unix.NFPROTO_IPV6} {
		out = append(out, scopedObject{f, "filter", clusterChain}, scopedObject{f, "filter", "FORWARD"})
	}
	return append(out, scopedObject{unix.NFPROTO_INET, NFTTable, nftClusterChain})
}

// fingerprint reads each object of scope over one netlink
// socket, in the calling thread's netns: the chain (absent, or its handle,
// policy and use count) and its rules (handles, expressions and user data,
// less what traffic changes: counters). Other chains' rules are never read,
// however many there are.
//
// Equivalent to: nft list chain FAMILY TABLE CHAIN, for each object.
func fingerprint(network string, scope []scopedObject) (string, error) {
	fd, err := nfSocket(0)
	if err != nil {
		return "", fmt.Errorf("fingerprint rules of network %q: netlink socket: %w", network, err)
	}
	defer unix.Close(fd)
	d := sha256.New()
	for i, o := range scope {
		seq := uint32(2*i + 1)
		if err := digestChain(fd, seq, o, d); err != nil {
			return "", fmt.Errorf("fingerprint rules of network %q: %w", network, err)
		}
		if err := digestRules(fd, seq+1, o, d); err != nil {
			return "", fmt.Errorf("fingerprint rules of network %q: %w", network, err)
		}
	}
	return hex.EncodeToString(d.Sum(nil)), nil
}

// digestChain adds the chain's handle, policy and use count to d, or that
// it is absent.
func digestChain(fd int, seq uint32, o scopedObject, d hash.Hash) error {
	attrs := append(nlAttr(unix.NFTA_CHAIN_TABLE, cString(o.table)), nlAttr(unix.NFTA_CHAIN_NAME, cString(o.chain))...)
	fmt.Fprintf(d, "chain %d %s %s:", o.family, o.table, o.chain)
	return nfRequest(fd, seq, unix.NFT_MSG_GETCHAIN, 0, o.family, attrs, func(body []byte) {
		for _, typ := range []uint16{unix.NFTA_CHAIN_HANDLE, unix.NFTA_CHAIN_POLICY, unix.NFTA_CHAIN_USE} {
			fmt.Fprintf(d, " %x", nfAttr(body, typ))
		}
	}, d)
}

// digestRules adds the chain's rules to d, in order: each one's handle,
// user data (iptables-nft's comment and match details) and expressions.
func digestRules(fd int, seq uint32, o scopedObject, d hash.Hash) error {
	attrs := append(nlAttr(unix.NFTA_RULE_TABLE, cString(o.table)), nlAttr(unix.NFTA_RULE_CHAIN, cString(o.chain))...)
	fmt.Fprintf(d, "\nrules:")
	return nfRequest(fd, seq, unix.NFT_MSG_GETRULE, unix.NLM_F_DUMP, o.family, attrs, func(body []byte) {
		fmt.Fprintf(d, "\nrule %x %x ", nfAttr(body, unix.NFTA_RULE_HANDLE), nfAttr(body, unix.NFTA_RULE_USERDATA))
		digestExprs(nfAttr(body, unix.NFTA_RULE_EXPRESSIONS), d)
	}, d)
}

// digestExprs adds a rule's expressions to d, each its name and data,
// except the data of those whose state traffic changes: what counter,
// quota and last hold are not rules.
func digestExprs(list []byte, d hash.Hash) {
	for _, elem := range nfAttrs(list) {
		name := nfAttr(elem, unix.NFTA_EXPR_NAME)
		d.Write(name)
		switch string(name) {
		case "counter\x00", "quota\x00", "last\x00":
			continue
		}
		d.Write(nfAttr(elem, unix.NFTA_EXPR_DATA))
	}
}
