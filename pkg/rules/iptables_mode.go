package rules

import (
	"fmt"
	"os/exec"
)

// IPTablesMode is which iptables commands an iptables backend runs. The
// zero value runs iptables-save, iptables-restore and their ip6tables kin
// as installed (whichever variant the alternatives point at), as the
// plugin does; ModeLegacy and ModeNFT run that variant's own commands
// (iptables-legacy-save, ip6tables-nft-restore, ...), for an agent whose
// image ships both and whose host uses one.
type IPTablesMode string

// The modes DetectIPTablesMode chooses between.
const (
	ModeInstalled IPTablesMode = ""
	ModeLegacy    IPTablesMode = variantLegacy
	ModeNFT       IPTablesMode = variantNFT
)

// DetectIPTablesMode chooses, in the calling thread's netns, the variant
// whose rules the host already uses, and says why. It decides only where
// both variants' commands are installed, both families' save and restore:
// then iptables-legacy if it holds tables here (rules of kube-proxy, the
// kubelet or the admin, which ours must sit beside: a FORWARD drop in one
// variant is not overruled by an accept in the other), else iptables-nft.
// Elsewhere it is ModeInstalled. No exec: a PATH lookup and one read.
func DetectIPTablesMode() (IPTablesMode, string) {
	for _, v := range []IPTablesMode{ModeLegacy, ModeNFT} {
		for _, tool := range v.tools() {
			if _, err := exec.LookPath(tool); err != nil {
				return ModeInstalled, fmt.Sprintf("%s is not installed, so iptables-save and iptables-restore run as installed", tool)
			}
		}
	}
	if legacyTables() {
		return ModeLegacy, "iptables-legacy holds tables in this netns (/proc/net/ip_tables_names or ip6_tables_names is not empty)"
	}
	return ModeNFT, "iptables-legacy holds no table in this netns"
}

// Effective names the variant m runs: m's own, or for ModeInstalled the one
// iptables-save is ("none" if it is not installed).
func (m IPTablesMode) Effective() string {
	if m != ModeInstalled {
		return string(m)
	}
	if v := iptablesVariant(); v != variantNone {
		return v
	}
	return "none"
}

// tools are the commands m runs.
func (m IPTablesMode) tools() []string {
	var out []string
	for _, v6 := range []bool{false, true} {
		for _, op := range []string{"save", "restore"} {
			out = append(out, m.tool(v6, op))
		}
	}
	return out
}

// tool names the command of m doing op ("save" or "restore") for a family.
func (m IPTablesMode) tool(v6 bool, op string) string {
	if m == ModeInstalled {
		return familyName(v6) + "-" + op
	}
	return familyName(v6) + "-" + string(m) + "-" + op
}
