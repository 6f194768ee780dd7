// Package spoofchk drops the frames a pod sends with a source MAC other
// than its own (the bridge plugin's macspoofchk option). It filters in
// nftables' bridge family, the only one that sees a frame as it enters the
// bridge from a port, Ethernet header and all, so its table has nothing of
// the masquerade and FORWARD rules of pkg/rules; it takes from pkg/rules
// only the nftables plumbing both need (comparing chains and expressions, the writers'
// backoff). It imports no CNI package.
package spoofchk

import (
	"context"
	"errors"
	"net"
)

// ErrMissing marks a CheckPort finding: the table, a set, the chain, the
// rule or one of the port's elements is absent or differs.
var ErrMissing = errors.New("spoof check missing")

// Port is one pod's bridge port: the host end of its veth, and the only
// source MAC let in through it, the pod interface's.
type Port struct {
	IfName string
	MAC    net.HardwareAddr
}

// Checker lets only a pod's own MAC in through its bridge port.
type Checker interface {
	// EnsurePort lets p.MAC, and no other source MAC, in through p.IfName.
	EnsurePort(ctx context.Context, p Port) error
	// DeletePort removes the check of port; an absent one is not an error.
	DeletePort(ctx context.Context, port string) error
	// CheckPort returns an error wrapping ErrMissing when p's check differs
	// from what EnsurePort makes.
	CheckPort(ctx context.Context, p Port) error
}

// finding is one way the installed check departs from the rendered one. It
// is an ErrMissing, so callers test for it with errors.Is.
type finding string

func (f finding) Error() string { return string(f) }
func (f finding) Unwrap() error { return ErrMissing }
