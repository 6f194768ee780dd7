package spoofchk

import (
	"fmt"
	"net"
	"testing"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// BenchmarkSpoofAddDel is what macspoofchk adds to one pod's ADD and DEL,
// EnsurePort then DeletePort, on a node already holding others' ports: each
// call reads the table (the elements' dump grows with the pods) and writes
// one batch.
func BenchmarkSpoofAddDel(b *testing.B) {
	for _, others := range []int{10, 1000} {
		b.Run(fmt.Sprint(others), func(b *testing.B) {
			s := spoofIn(b, testenv.NewNS(b, "spoofb"))
			for i := range others {
				p := Port{IfName: fmt.Sprintf("nbother%d", i), MAC: net.HardwareAddr{2, 0, 0, 0, byte(i >> 8), byte(i)}}
				if err := s.EnsurePort(b.Context(), p); err != nil {
					b.Fatalf("EnsurePort %s: %v", p.IfName, err)
				}
			}
			p := Port{IfName: "nbbench", MAC: net.HardwareAddr{2, 0, 0, 0, 0xff, 0xff}}
			for b.Loop() {
				if err := s.EnsurePort(b.Context(), p); err != nil {
					b.Fatalf("EnsurePort: %v", err)
				}
				if err := s.DeletePort(b.Context(), p.IfName); err != nil {
					b.Fatalf("DeletePort: %v", err)
				}
			}
		})
	}
}
