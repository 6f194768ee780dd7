// Package bridge attaches pods to a Linux bridge: it ensures the bridge, makes
// the veth pair, moves one end into the pod, and drives pkg/ipam for addresses
// and pkg/iptables for the network's rules.
package bridge

import (
	"context"
	"errors"

	current "github.com/containernetworking/cni/pkg/types/100"
)

var errTODO = errors.New("not implemented")

// Add attaches p to the network and returns the result; a failure undoes
// everything this call created.
func Add(ctx context.Context, c *Config, p Pod) (*current.Result, error) { return nil, errTODO }

// Del detaches p; anything already gone is success.
func Del(ctx context.Context, c *Config, p Pod) error { return errTODO }

// Check verifies that p is attached as prev describes.
func Check(ctx context.Context, c *Config, p Pod, prev *current.Result) error { return errTODO }

// Status reports whether an ADD could succeed now; an error wraps ErrUnavailable when not.
func Status(ctx context.Context, c *Config) error { return errTODO }

// GC releases every attachment of the network not in c.ValidAttachments.
func GC(ctx context.Context, c *Config) error { return errTODO }
