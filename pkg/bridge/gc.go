package bridge

import (
	"context"
	"fmt"
)

// Status reports whether an ADD could succeed now: for host-local, the
// store is usable and writable and every range set has a free address; for
// another IPAM plugin, its STATUS succeeds. A failure wraps ErrUnavailable.
func Status(ctx context.Context, c *Config) error {
	return c.addresser.status(ctx, c)
}

// GC releases every attachment of the network that is not in
// cni.dev/valid-attachments, with its host veth and spoof check, and the
// network's rules once nothing is left. It also deletes the pairs DEL
// retired whose reaper never finished.
func GC(ctx context.Context, c *Config, h *Host) error {
	if err := sweepRetired(c); err != nil {
		return fmt.Errorf("gc network %s: %w", c.Name, err)
	}
	return c.addresser.gc(ctx, c, h)
}
