package ipam

import (
	"fmt"
	"net/netip"
	"testing"
)

// BenchmarkAllocate measures one ADD's allocation in a network that already
// holds leases: scan, write the record, update last_reserved_ip. Each
// iteration's address is freed again so the lease count stays put.
func BenchmarkAllocate(b *testing.B) {
	for _, leases := range []int{10, 10_000} {
		b.Run(fmt.Sprintf("leases=%d", leases), func(b *testing.B) {
			p, s := poolOf(b, "10.0.0.0/16"), newStore(b)
			addr := netip.MustParseAddr("10.0.0.2")
			for i := range leases {
				if ok, err := s.writeRecord(addr, att(fmt.Sprint("lease-", i))); !ok || err != nil {
					b.Fatalf("seed %s: %v, %v", addr, ok, err)
				}
				addr = addr.Next()
			}
			pod := att("pod")
			for b.Loop() {
				allocs, err := s.Allocate(p, pod, nil)
				if err != nil {
					b.Fatal(err)
				}
				if err := s.removeFile(allocs[0].Addr.Addr().String()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
