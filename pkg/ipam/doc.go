// Package ipam is nodebridge's in-process host-local address allocator.
//
// It keeps its state in the same on-disk layout as the reference host-local
// plugin v1.9.1 (<dataDir>/<network>/<ip> files holding "containerID\r\nifname",
// last_reserved_ip.<set> files, and a flock on <dataDir>/<network>/lock), so
// a node can switch between the two plugins with its allocations intact, and
// the two can even run side by side.
//
// Config.Pool validates the "ipam" section; Open gives the Store of one
// network, whose Allocate, Release and GC run under its Lock.
//
// The package imports no CNI package: it takes and returns net/netip values
// and plain or sentinel errors.
package ipam
