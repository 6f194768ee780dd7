package rules

import (
	"context"
	"fmt"
)

// hostChoice is Select's backend for a config that names none: the host's
// own choice (DefaultBackend), made on first need. A call whose rules are
// unchanged since they were verified needs only the stamp, which is the
// same whichever backend the host would get, so it never probes the host's
// iptables and nftables tables; nor does a DEL that deletes no rules.
type hostChoice struct {
	logf   func(format string, args ...any)
	name   string // DefaultBackend's answer, once asked
	chosen primary
}

var (
	_ Backend       = (*hostChoice)(nil)
	_ Fingerprinter = (*hostChoice)(nil)
)

// backend is the host's choice, made once.
func (h *hostChoice) backend() primary {
	if h.chosen == nil {
		h.name = DefaultBackend()
		h.chosen, _ = selectPrimary(h.name, ModeInstalled, h.logf) // DefaultBackend names a backend
	}
	return h.chosen
}

// EnsureNetwork is the chosen backend's.
func (h *hostChoice) EnsureNetwork(ctx context.Context, n Network) error {
	return h.backend().EnsureNetwork(ctx, n)
}

// CheckNetwork is the chosen backend's.
func (h *hostChoice) CheckNetwork(ctx context.Context, n Network) error {
	return h.backend().CheckNetwork(ctx, n)
}

// DeleteNetwork is the chosen backend's.
func (h *hostChoice) DeleteNetwork(ctx context.Context, n Network) error {
	return h.backend().DeleteNetwork(ctx, n)
}

// Stamp is what either backend's stamp would be, without choosing: empty
// where iptables-legacy may hold rules (its changes do not move the
// generation), else the generation of the caller's netns; without
// iptables-save, the chosen backend's. What would
// change the host's choice without moving the generation (iptables
// installed or removed, legacy tables appearing) leaves the verified rules
// working in the kernel, and the next change of the ruleset re-verifies
// with the new choice (see Fingerprint).
func (h *hostChoice) Stamp(ctx context.Context) (string, error) {
	if h.chosen != nil {
		return h.chosen.Stamp(ctx)
	}
	switch iptablesVariant() {
	case variantLegacy:
		return "", nil
	case variantNone: // rare: which backend depends on iptables-restore
		return h.backend().Stamp(ctx)
	}
	return generationStamp() // what both backends' stamps are here
}

// Fingerprint is the chosen backend's, prefixed with its name, so that a
// new choice does not match rules verified under the old one.
func (h *hostChoice) Fingerprint(ctx context.Context, n Network) (string, error) {
	fp, err := h.backend().Fingerprint(ctx, n)
	if err != nil || fp == "" {
		return "", err
	}
	return fmt.Sprintf("%s %s", h.name, fp), nil
}
