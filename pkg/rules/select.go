package rules

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/google/nftables"
)

// Backend names, as the ipMasqBackend config field spells them.
const (
	IPTablesName = "iptables"
	NFTablesName = "nftables"
)

// Select returns the Backend named by ipMasqBackend: the named backend,
// with what it needs of the other (see crossbackend.go); for an empty name
// the host's own choice (DefaultBackend), made only when a call needs more
// than the rules' stamp (hostchoice.go). Either backend takes over a
// network's rules from the other, so switching a node with live pods from
// one to the other leaves one masquerade per network, with no record kept
// of the previous choice.
func Select(name string, logf func(format string, args ...any)) (Backend, error) {
	if name == "" {
		return &hostChoice{logf: logf}, nil
	}
	return selectPrimary(name, ModeInstalled, logf)
}

// SelectCluster is Select for the cluster accepts, by the same rule; the
// backend it returns is also a ClusterFingerprinter. Its iptables rules,
// whichever backend is chosen, are read and written in mode (see
// DetectIPTablesMode); the plugin's are always ModeInstalled.
func SelectCluster(name string, mode IPTablesMode, logf func(format string, args ...any)) (ClusterBackend, error) {
	return selectPrimary(name, mode, logf)
}

// primary is what Select and SelectCluster choose between.
type primary interface {
	Backend
	ClusterBackend
	Fingerprinter
	ClusterFingerprinter
}

// selectPrimary is the backend named, or chosen with DefaultBackend.
func selectPrimary(name string, mode IPTablesMode, logf func(format string, args ...any)) (primary, error) {
	if name == "" {
		name = DefaultBackend()
	}
	switch name {
	case NFTablesName:
		return newNFTPrimary(logf, mode), nil
	case IPTablesName:
		return newIPTPrimary(logf, mode), nil
	}
	return nil, fmt.Errorf("ipMasqBackend %q: must be %q or %q", name, IPTablesName, NFTablesName)
}

// DefaultBackend is the backend for a config without ipMasqBackend: the one
// the host already uses, else iptables, as in the reference plugin. It
// decides in process (a PATH lookup, two small reads and one netlink dump,
// no exec), in the caller's netns, by the first rule that applies:
//  1. nftables if iptables-restore is not installed (the reference's rule);
//  2. iptables if iptables-legacy holds tables in this netns;
//  3. iptables if nftables holds a table named as iptables names its own
//     (filter, nat, mangle, raw, security) in family ip or ip6: iptables-nft,
//     most likely, so the host's rules are iptables';
//  4. nftables if nftables holds any other table, ours included;
//  5. iptables otherwise: an empty ruleset, or nftables unreadable.
func DefaultBackend() string {
	if _, err := exec.LookPath("iptables-restore"); err != nil {
		return NFTablesName
	}
	if legacyTables() {
		return IPTablesName
	}
	tables, err := listTables()
	if err != nil {
		return IPTablesName
	}
	return defaultFor(tables)
}

// defaultFor is rules 3 to 5 of DefaultBackend for the tables nftables holds.
func defaultFor(tables []*nftables.Table) string {
	if len(tables) == 0 {
		return IPTablesName
	}
	xtables := []string{"filter", "nat", "mangle", "raw", "security"}
	for _, t := range tables {
		ipFamily := t.Family == nftables.TableFamilyIPv4 || t.Family == nftables.TableFamilyIPv6
		if ipFamily && slices.Contains(xtables, t.Name) {
			return IPTablesName
		}
	}
	return NFTablesName
}

// legacyTables reports whether iptables-legacy holds a table in the calling
// thread's netns: the kernel lists those it instantiated there, and
// iptables-nft never makes it instantiate one.
func legacyTables() bool {
	for _, f := range []string{"ip_tables_names", "ip6_tables_names"} {
		b, err := os.ReadFile("/proc/thread-self/net/" + f)
		if err == nil && strings.TrimSpace(string(b)) != "" {
			return true
		}
	}
	return false
}
