// Package ipam is nodebridge's in-process host-local address allocator.
//
// It keeps its state in the same on-disk layout as the reference host-local
// plugin (<dataDir>/<network>/<ip> files holding "containerID\r\nifname",
// last_reserved_ip.<set> files, and a flock on the network directory), so a
// node can switch between the two plugins with its allocations intact.
//
// The package imports no CNI package: it takes and returns net/netip values
// and plain or sentinel errors.
package ipam
