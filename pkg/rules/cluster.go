package rules

import (
	"context"
	"net/netip"
	"strings"
)

// Cluster is what nodebridge-agent's FORWARD accepts are built from: the
// cluster's pod CIDRs, so that pod traffic between nodes survives a FORWARD
// policy of DROP. Their number depends on the cluster CIDRs (at most one per
// family), never on the number of nodes or pods.
type Cluster struct {
	Name  string         // CNI network name, for messages and comments; see CheckName
	CIDRs []netip.Prefix // cluster pod CIDRs, either family
}

// ClusterBackend installs a cluster's FORWARD accepts. Both backends
// implement it beside Backend, and Select's choice covers both.
type ClusterBackend interface {
	// EnsureCluster makes the accepts exactly as rendered, creating or
	// repairing them; a family without CIDRs is left without any.
	EnsureCluster(ctx context.Context, c Cluster) error
	// DeleteCluster removes the accepts of both families; absent ones are not an error.
	DeleteCluster(ctx context.Context, c Cluster) error
	// CheckCluster returns an error wrapping ErrMissing when the accepts differ from the rendered ones.
	CheckCluster(ctx context.Context, c Cluster) error
}

// ClusterFingerprinter is a ClusterBackend that can stamp the host's rules
// and digest the kernel objects its EnsureCluster reads, as Fingerprinter
// does for a network: equal values taken at two moments mean the accepts
// verified at the first are still in place. Empty means "unknown".
type ClusterFingerprinter interface {
	Stamper
	FingerprintCluster(ctx context.Context, c Cluster) (string, error)
}

var (
	_ ClusterFingerprinter = (*IPTables)(nil)
	_ ClusterFingerprinter = (*NFTables)(nil)
	_ ClusterFingerprinter = (*nftPrimary)(nil)
	_ ClusterFingerprinter = (*iptPrimary)(nil)
	_ ClusterBackend       = (*Fake)(nil)
)

// clusterChain is the iptables chain of the accepts, FORWARD's first
// jump. The name predates this package and stays, so that nodes upgrade in
// place.
const clusterChain = "NB-AGENT-FWD"

// nftClusterChain is the nftables base chain of the accepts, in table
// inet nodebridge.
const nftClusterChain = "cluster-fwd"

// NotInstalledError is what an iptables EnsureCluster returns when the
// tools of a family with cluster CIDRs are not installed: that family is
// left without accepts, the others are in place. It wraps exec.ErrNotFound.
type NotInstalledError struct {
	Tools []string // "iptables", "ip6tables"
	err   error    // the first family's error
}

func (e *NotInstalledError) Error() string {
	return strings.Join(e.Tools, ", ") + ": not installed, FORWARD accepts skipped: " + e.err.Error()
}

func (e *NotInstalledError) Unwrap() error { return e.err }
