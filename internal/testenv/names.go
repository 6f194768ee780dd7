package testenv

import "strings"

// RefusedName is a network or bridge name both the plugin and the agent
// must refuse, and the reason their messages give.
type RefusedName struct {
	Network, Bridge string // one of the two is set
	Reason          string // in the message, after the field and value
}

// RefusedNames are the names the plugin's and the agent's validation tests
// share, so the agent never writes a conflist the plugin refuses.
func RefusedNames() []RefusedName {
	return []RefusedName{
		{Network: ".podnet", Reason: "must match"},
		{Network: "-podnet", Reason: "must match"},
		{Network: "_podnet", Reason: "must match"},
		{Network: "pod net", Reason: "must match"},
		{Network: strings.Repeat("n", 201), Reason: "longer than 200 bytes"},
		{Bridge: "br:0", Reason: "contains '/', ':', NUL or whitespace"},
		{Bridge: "br\t0", Reason: "contains"},
		{Bridge: "br/0", Reason: "contains"},
		{Bridge: "all", Reason: `"all" is not an interface name`},
		{Bridge: "default", Reason: `"default" is not an interface name`},
		{Bridge: "..", Reason: `".." is not an interface name`},
		{Bridge: "averyveryverylongbridge", Reason: "longer than 15 bytes"},
	}
}
