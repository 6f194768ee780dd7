package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/nodebridge/nodebridge/pkg/rules"
)

// rulesTimeout bounds one pass over the rules: a hung iptables must fail
// the pass, not stop the reconcile loop (and with it /healthz).
const rulesTimeout = 30 * time.Second

// ruleSyncer keeps the FORWARD accepts for the cluster CIDRs in place
// through the rules backend, as the plugin keeps a network's rules: it
// remembers what it applied, so a reconcile with unchanged cluster CIDRs
// does nothing unless asked to verify (on resync), and a verify costs no
// exec while the backend's stamp, or the accepts' fingerprint, is the one
// last verified. Anything that changes the accepts (a flush, say) moves
// both, and the verify repairs it.
type ruleSyncer struct {
	backend  rules.ClusterBackend
	network  string // the CNI network name, in the rules' messages
	log      *slog.Logger
	timeout  time.Duration  // of one ensure; 0: rulesTimeout
	applied  []netip.Prefix // in place as of the last ensure
	known    bool           // applied is valid
	verified [2]string      // stamp and fingerprint that last showed applied in place
	missing  []string       // families skipped: their iptables tools are not installed
}

// sync makes the accepts those of cidrs; verify re-reads the kernel, unless
// the stamp or fingerprint shows nothing of the accepts changed.
func (r *ruleSyncer) sync(ctx context.Context, cidrs []netip.Prefix, verify bool) error {
	same := r.known && slices.Equal(r.applied, cidrs)
	if same && !verify {
		return nil
	}
	c := rules.Cluster{Name: r.network, CIDRs: cidrs}
	fp, _ := r.backend.(rules.ClusterFingerprinter)
	stamp := r.stamp(ctx, fp)
	if same && stamp != "" && stamp == r.verified[0] {
		return nil
	}
	fprint := r.fingerprint(ctx, fp, c)
	if same && fprint != "" && fprint == r.verified[1] {
		r.verified[0] = stamp
		return nil
	}
	if err := r.ensure(ctx, c); err != nil {
		r.known = false
		return err
	}
	r.known, r.applied, r.verified = true, cidrs, [2]string{}
	// Only a pass that changed nothing proves the accepts as of this stamp
	// and fingerprint; after a write the next verify records them.
	if fprint != "" && r.fingerprint(ctx, fp, c) == fprint {
		r.verified = [2]string{stamp, fprint}
	}
	return nil
}

// ensure runs the backend's EnsureCluster within the timeout. Families
// whose iptables tools are missing are skipped, with a warning when that
// changes.
func (r *ruleSyncer) ensure(ctx context.Context, c rules.Cluster) error {
	timeout := cmp.Or(r.timeout, rulesTimeout)
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("no answer after %s: %w", timeout, context.DeadlineExceeded))
	defer cancel()
	err := r.backend.EnsureCluster(ctx, c)
	var missing *rules.NotInstalledError
	var tools []string
	if errors.As(err, &missing) {
		tools, err = missing.Tools, nil
	}
	if err != nil {
		return fmt.Errorf("FORWARD accepts for cluster CIDRs %v: %w", c.CIDRs, err)
	}
	if len(tools) > 0 && !slices.Equal(tools, r.missing) {
		r.log.Warn("iptables not installed: FORWARD accepts for the cluster CIDRs skipped", "tools", tools)
	}
	r.missing = tools
	return nil
}

// stamp is the backend's stamp, "" when it cannot tell.
func (r *ruleSyncer) stamp(ctx context.Context, fp rules.ClusterFingerprinter) string {
	if fp == nil {
		return ""
	}
	s, err := fp.Stamp(ctx)
	return r.orEmpty("stamp", s, err)
}

// fingerprint is the backend's fingerprint of the accepts' objects, "" when
// it cannot tell.
func (r *ruleSyncer) fingerprint(ctx context.Context, fp rules.ClusterFingerprinter, c rules.Cluster) string {
	if fp == nil {
		return ""
	}
	s, err := fp.FingerprintCluster(ctx, c)
	return r.orEmpty("fingerprint", s, err)
}

// orEmpty is v, or "" (verify) when err says it failed.
func (r *ruleSyncer) orEmpty(what, v string, err error) string {
	if err != nil {
		r.log.Warn("rules "+what+" failed, verifying the rules instead", "err", err)
		return ""
	}
	return v
}
