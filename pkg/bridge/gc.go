package bridge

import (
	"context"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/nodebridge/nodebridge/pkg/ipam"
)

// Status reports whether an ADD could succeed now: the store is usable and
// writable and every range set has a free address. A failure wraps
// ErrUnavailable.
func Status(ctx context.Context, c *Config) error {
	if c.Pool == nil {
		if c.IPAM != nil && c.IPAM.Type != "" {
			if _, err := delegateIPAM(ctx, c, "STATUS"); err != nil {
				return fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
		}
		return nil
	}
	st, err := lockStore(ctx, c)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer st.Close()
	if err := unix.Access(st.Dir(), unix.W_OK); err != nil {
		return fmt.Errorf("%w: ipam.dataDir %s: not writable: %w", ErrUnavailable, st.Dir(), err)
	}
	full, err := st.Full(c.Pool)
	if err != nil {
		return fmt.Errorf("%w: read store %s: %w", ErrUnavailable, st.Dir(), err)
	}
	if full {
		return fmt.Errorf("%w: network %s: address pool exhausted", ErrUnavailable, c.Name)
	}
	return nil
}

// GC releases every attachment of the network that is not in
// cni.dev/valid-attachments, with its host veth and spoof check, and the
// network's rules once nothing is left. It also deletes the pairs DEL
// retired whose reaper never finished.
func GC(ctx context.Context, c *Config) error {
	if err := sweepRetired(c); err != nil {
		return fmt.Errorf("gc network %s: %w", c.Name, err)
	}
	if c.Pool == nil {
		if c.IPAM != nil && c.IPAM.Type != "" {
			_, err := delegateIPAM(ctx, c, "GC")
			return err
		}
		return nil
	}
	st, err := lockStore(ctx, c)
	if err != nil {
		return err
	}
	defer st.Close()
	valid := make([]ipam.Attachment, len(c.ValidAttachments))
	for i, a := range c.ValidAttachments {
		valid[i] = ipam.Attachment{ContainerID: a.ContainerID, IfName: a.IfName}
	}
	released, err := st.GC(valid)
	if err != nil {
		return fmt.Errorf("gc network %s: %w", c.Name, err)
	}
	for _, a := range released {
		host := hostVethName(Pod{ContainerID: a.ContainerID, IfName: a.IfName})
		if err := deleteHostVeth(c, host); err != nil {
			return err
		}
		if err := deleteSpoofCheck(ctx, c, host); err != nil {
			return err
		}
	}
	return deleteRulesIfUnused(ctx, c, st)
}
