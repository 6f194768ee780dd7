package bridge

import (
	"context"

	"github.com/nodebridge/nodebridge/pkg/rules"
	"github.com/nodebridge/nodebridge/pkg/spoofchk"
)

// Host is what a call acts on the node through besides netlink, and where
// it reports. cmd builds it from the config, so the rules layer logs to
// the same sink as the rest of the call; tests swap each part for a fake.
type Host struct {
	// Rules installs the network's masquerade and FORWARD rules; nil
	// without ipMasq, when a network has none.
	Rules rules.Backend
	// Spoof is the pods' MAC spoof check; nil without macspoofchk.
	Spoof spoofchk.Checker
	// Reaper is the executable DEL starts to delete a veth in the
	// background (reap.go); empty: DEL deletes and waits.
	Reaper string
	// Logf is the diagnostics sink; nil discards.
	Logf func(format string, args ...any)
}

// rules is h.Rules, or a backend with nothing to do when the network does
// not masquerade, so no verb asks which; only the last-attachment checks
// before a delete ask, to skip reading the store or the links for nothing.
func (h *Host) rules() rules.Backend {
	if h.Rules == nil {
		return noRules{}
	}
	return h.Rules
}

// logf writes a diagnostic to h.Logf, if cmd set one.
func (h *Host) logf(format string, args ...any) {
	if h.Logf != nil {
		h.Logf(format, args...)
	}
}

// noRules is the rules of a network without ipMasq: none.
type noRules struct{}

var _ rules.Backend = noRules{}

func (noRules) EnsureNetwork(context.Context, rules.Network) error { return nil }
func (noRules) DeleteNetwork(context.Context, rules.Network) error { return nil }
func (noRules) CheckNetwork(context.Context, rules.Network) error  { return nil }
