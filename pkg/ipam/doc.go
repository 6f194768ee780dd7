// Package ipam is nodebridge's in-process host-local address allocator.
//
// It keeps its state in the same on-disk layout as the reference host-local
// plugin v1.9.1 (<dataDir>/<network>/<ip> files holding "containerID\r\nifname",
// last_reserved_ip.<set> files, and a flock on <dataDir>/<network>/lock), so
// a node can switch between the two plugins with its allocations intact, and
// the two can even run side by side.
//
// Beside that layout it keeps an attachment index, in a subdirectory the
// reference ignores, so that ADD and DEL cost the same however many
// addresses the network holds: Allocate claims an address with a
// create-exclusive link of an unnamed file, round-robin from last_reserved_ip, and asks the
// index, not a scan, what the attachment already holds; Release reads only
// the attachment's index entries and records. A seal made of the two
// directories' mtimes tells when the reference, an operator or a crash
// changed records behind the index's back, and one scan rebuilds it; every
// index hit is read back from its record before it is trusted. See
// index.go, seal.go and rebuild.go.
//
// Config.Pool validates the "ipam" section; Open gives the Store of one
// network, whose Allocate, Release and GC run under its Lock.
//
// The package imports no CNI package: it takes and returns net/netip values
// and plain or sentinel errors.
package ipam
