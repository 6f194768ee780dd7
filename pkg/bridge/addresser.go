package bridge

import (
	"context"

	current "github.com/containernetworking/cni/pkg/types/100"
)

// addresser gives pods their addresses and keeps the network's rules in
// step with them. Parse picks one of three from the ipam section once:
// hostLocal (in process), delegated (another IPAM plugin from CNI_PATH) or
// noIPAM (no ipam.type: the pods get no addresses, layer 2 only).
type addresser interface {
	// add gets p's addresses and ensures the network's rules for them.
	add(ctx context.Context, c *Config, h *Host, p Pod) (*current.Result, error)
	// release frees p's addresses and, with the network's last attachment,
	// its rules. Nothing held is success.
	release(ctx context.Context, c *Config, h *Host, p Pod) error
	// check insists p still holds the addresses of prev and the network's
	// rules are in place.
	check(ctx context.Context, c *Config, h *Host, p Pod, prev *current.Result) error
	// status reports whether an add could succeed now.
	status(ctx context.Context, c *Config) error
	// gc releases every attachment not in cni.dev/valid-attachments, and
	// the network's rules once nothing is left.
	gc(ctx context.Context, c *Config, h *Host) error
}

var (
	_ addresser = (*hostLocal)(nil)
	_ addresser = delegated{}
	_ addresser = noIPAM{}
)

// noIPAM is a network without ipam.type: no addresses, so no rules to
// install or remove for them.
type noIPAM struct{}

func (noIPAM) add(context.Context, *Config, *Host, Pod) (*current.Result, error) {
	return &current.Result{}, nil
}

func (noIPAM) release(context.Context, *Config, *Host, Pod) error { return nil }

// check verifies the rules of the subnets of prev's addresses, if it has
// any, as for a delegated plugin.
func (noIPAM) check(ctx context.Context, c *Config, h *Host, _ Pod, prev *current.Result) error {
	return checkRulesOf(ctx, c, h, prev.IPs)
}

func (noIPAM) status(context.Context, *Config) error { return nil }

func (noIPAM) gc(context.Context, *Config, *Host) error { return nil }
