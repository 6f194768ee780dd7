package ipam

import (
	"context"
	"errors"
	"net/netip"
)

// errTODO marks the contract stubs until the allocator lands.
var errTODO = errors.New("not implemented")

// Attachment names one pod interface: CNI_CONTAINERID + CNI_IFNAME.
type Attachment struct {
	ContainerID string
	IfName      string
}

// Allocation is one address handed out from a range set.
type Allocation struct {
	Addr    netip.Prefix // the address with its subnet's prefix length
	Gateway netip.Addr
}

// Store is the on-disk state of one network, <dataDir>/<network>.
type Store struct {
	dir string
}

// Open opens (creating if needed) the store of network under dataDir.
func Open(dataDir, network string) (*Store, error) { return nil, errTODO }

// Dir is the network directory.
func (s *Store) Dir() string { return s.dir }

// Lock takes the network's flock, waiting until ctx ends (then ErrLocked).
func (s *Store) Lock(ctx context.Context) error { return errTODO }

// Unlock releases the flock.
func (s *Store) Unlock() error { return errTODO }

// Close releases the lock if held and closes the directory handle.
func (s *Store) Close() error { return nil }

// Allocate hands out one address per range set of p to a (the caller holds the lock).
func (s *Store) Allocate(p *Pool, a Attachment, requested []netip.Addr) ([]Allocation, error) {
	return nil, errTODO
}

// Release frees every address held by a; none held is not an error.
func (s *Store) Release(a Attachment) ([]netip.Addr, error) { return nil, errTODO }

// Lookup returns the addresses held by a.
func (s *Store) Lookup(a Attachment) ([]netip.Addr, error) { return nil, errTODO }

// Attachments lists every attachment holding an address.
func (s *Store) Attachments() ([]Attachment, error) { return nil, errTODO }

// GC releases every attachment not in valid and returns those it released.
func (s *Store) GC(valid []Attachment) ([]Attachment, error) { return nil, errTODO }

// Full reports whether some range set of p has no free address.
func (s *Store) Full(p *Pool) (bool, error) { return false, errTODO }
