package ipam

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestAllocateSequence(t *testing.T) {
	split := Config{Ranges: [][]RangeConfig{{
		{Subnet: "10.0.0.0/30"},
		{Subnet: "10.0.1.0/29", RangeStart: "10.0.1.5"},
	}}}
	tests := []struct {
		name    string
		pool    *Pool
		release []int    // after allocating all, release these (indexes into want)
		want    []string // one attachment each, in order
		then    []string // allocated after the releases
	}{
		{"sequential, gateway skipped", poolOf(t, "10.0.0.0/24"), nil,
			[]string{"10.0.0.2", "10.0.0.3", "10.0.0.4"}, nil},
		{"round-robin after release", poolOf(t, "10.0.0.0/24"), []int{0},
			[]string{"10.0.0.2", "10.0.0.3"}, []string{"10.0.0.4"}},
		{"wraps to freed address", poolOf(t, "10.0.0.0/29"), []int{1},
			[]string{"10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"}, []string{"10.0.0.3"}},
		{"explicit gateway mid-range", mustPool(t, Config{Subnet: "10.0.0.0/29", Gateway: "10.0.0.3"}), nil,
			[]string{"10.0.0.1", "10.0.0.2", "10.0.0.4", "10.0.0.5", "10.0.0.6"}, nil},
		{"ranges in order, then wrap", mustPool(t, split), []int{0},
			[]string{"10.0.0.2", "10.0.1.5", "10.0.1.6"}, []string{"10.0.0.2"}},
		{"ipv6", poolOf(t, "fd00::/64"), []int{0, 1},
			[]string{"fd00::2", "fd00::3"}, []string{"fd00::4", "fd00::5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			var got []netip.Addr
			for i := range tt.want {
				got = append(got, mustAlloc(t, s, tt.pool, att(fmt.Sprint("a", i)))...)
			}
			if !slices.Equal(got, addrs(tt.want...)) {
				t.Fatalf("allocated %v, want %v", got, tt.want)
			}
			for _, i := range tt.release {
				mustRelease(t, s, att(fmt.Sprint("a", i)))
			}
			got = nil
			for i := range tt.then {
				got = append(got, mustAlloc(t, s, tt.pool, att(fmt.Sprint("b", i)))...)
			}
			if !slices.Equal(got, addrs(tt.then...)) {
				t.Errorf("after release allocated %v, want %v", got, tt.then)
			}
		})
	}
}

func TestAllocateExhaustion(t *testing.T) {
	tests := []struct {
		subnet string
		n      int
	}{
		{"10.0.0.0/30", 1},  // .1 gateway, .2; .0 network, .3 broadcast
		{"10.0.0.0/28", 13}, // .2 to .14
		{"fd00::/126", 2},   // ::1 gateway, ::2, ::3
	}
	for _, tt := range tests {
		t.Run(tt.subnet, func(t *testing.T) {
			p, s := poolOf(t, tt.subnet), newStore(t)
			sub := netip.MustParsePrefix(tt.subnet)
			seen := map[netip.Addr]bool{}
			for i := range tt.n {
				a := mustAlloc(t, s, p, att(fmt.Sprint("c", i)))[0]
				if seen[a] || a == sub.Addr() || a == sub.Addr().Next() || a == lastAddr(sub) && a.Is4() {
					t.Fatalf("allocation %d: %s is a duplicate, network, gateway or broadcast address", i, a)
				}
				seen[a] = true
			}
			full, err := s.Full(p)
			if err != nil || !full {
				t.Errorf("Full = %v, %v; want true", full, err)
			}
			_, err = s.Allocate(p, att("last"), nil)
			want := fmt.Sprintf("range set 0 (%s): no free address", tt.subnet)
			if !errors.Is(err, ErrExhausted) || err.Error() != want {
				t.Errorf("Allocate when full: %v; want %q wrapping ErrExhausted", err, want)
			}
		})
	}
}

func TestAllocateRequested(t *testing.T) {
	p := poolOf(t, "10.0.0.0/24", "fd00::/64")
	tests := []struct {
		name    string
		req     []string
		want    []string
		wantErr string
		invalid bool
	}{
		{"v4 honoured", []string{"10.0.0.7"}, []string{"10.0.0.7", "fd00::3"}, "", false},
		{"both honoured", []string{"fd00::99", "10.0.0.99"}, []string{"10.0.0.99", "fd00::99"}, "", false},
		{"taken", []string{"10.0.0.5"}, nil, "requested address 10.0.0.5 is already allocated", false},
		{"outside every range", []string{"10.0.1.5"}, nil, `requested address "10.0.1.5": outside every range`, true},
		{"broadcast", []string{"10.0.0.255"}, nil, `requested address "10.0.0.255": outside every range`, true},
		{"gateway", []string{"fd00::1"}, nil, `requested address "fd00::1": is a gateway`, true},
		{"two in one set", []string{"10.0.0.8", "10.0.0.9"}, nil,
			`requested address "10.0.0.9": range set 0 (10.0.0.0/24) already has requested address 10.0.0.8`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			mustAlloc(t, s, p, att("other"), addrs("10.0.0.5")...)
			allocs, err := s.Allocate(p, att("pod"), addrs(tt.req...))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || errors.Is(err, ErrInvalid) != tt.invalid {
					t.Fatalf("Allocate: %v; want %q (ErrInvalid: %v)", err, tt.wantErr, tt.invalid)
				}
				if held := mustLookup(t, s, att("pod")); len(held) != 0 {
					t.Errorf("failed Allocate left %v held", held)
				}
				return
			}
			var got []netip.Addr
			for _, a := range allocs {
				got = append(got, a.Addr.Addr())
			}
			if err != nil || !slices.Equal(got, addrs(tt.want...)) {
				t.Fatalf("Allocate = %v, %v; want %v", got, err, tt.want)
			}
			// The requested address becomes the round-robin point, as in the reference.
			if next := mustAlloc(t, s, p, att("next")); next[0] != got[0].Next() {
				t.Errorf("next allocation %v, want %v", next[0], got[0].Next())
			}
		})
	}
}

func TestAllocateDualStack(t *testing.T) {
	p := mustPool(t, Config{Ranges: [][]RangeConfig{
		{{Subnet: "10.0.0.0/24", Gateway: "10.0.0.254"}},
		{{Subnet: "fd00:10::/64"}},
	}})
	s := newStore(t)
	got, err := s.Allocate(p, att("pod"), nil)
	want := []Allocation{
		{Addr: netip.MustParsePrefix("10.0.0.1/24"), Gateway: netip.MustParseAddr("10.0.0.254")},
		{Addr: netip.MustParsePrefix("fd00:10::2/64"), Gateway: netip.MustParseAddr("fd00:10::1")},
	}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("Allocate = %v, %v; want %v", got, err, want)
	}
	if last := readFile(t, s, "last_reserved_ip.1"); last != "fd00:10::2" {
		t.Errorf("last_reserved_ip.1 = %q, want fd00:10::2", last)
	}
}

func TestAllocateIdempotent(t *testing.T) {
	p, s := poolOf(t, "10.0.0.0/24", "fd00::/64"), newStore(t)
	first, err := s.Allocate(p, att("pod"), nil)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Allocate(p, att("pod"), nil)
	if err != nil || !slices.Equal(first, again) {
		t.Fatalf("second Allocate = %v, %v; want %v", again, err, first)
	}
	if again, err := s.Allocate(p, att("pod"), addrs("10.0.0.2")); err != nil || !slices.Equal(first, again) {
		t.Errorf("Allocate requesting the held address = %v, %v; want %v", again, err, first)
	}
	_, err = s.Allocate(p, att("pod"), addrs("10.0.0.50"))
	if err == nil || !strings.Contains(err.Error(), "pod/eth0 already holds 10.0.0.2") {
		t.Errorf("Allocate requesting another address: %v; want an error naming the held one", err)
	}
	want := []string{"10.0.0.2", "fd00::2", "last_reserved_ip.0", "last_reserved_ip.1", "lock"}
	if names := dirNames(t, s); !slices.Equal(names, want) {
		t.Errorf("directory %v, want %v", names, want)
	}
}

func TestAllocateFillsMissingSet(t *testing.T) {
	// A legacy record (old host-local wrote only the ID) counts as held by
	// every ifname of that container; a set added to the config later gets
	// a fresh address.
	s := newStore(t)
	writeFile(t, s, "10.0.0.9", "pod\n")
	got := mustAlloc(t, s, poolOf(t, "10.0.0.0/24", "fd00::/64"), att("pod"))
	if want := addrs("10.0.0.9", "fd00::2"); !slices.Equal(got, want) {
		t.Errorf("Allocate = %v, want %v", got, want)
	}
}

func TestAllocateRollback(t *testing.T) {
	p, s := poolOf(t, "10.0.0.0/24", "10.1.0.0/30"), newStore(t)
	mustAlloc(t, s, p, att("first"))
	before := dirNames(t, s)
	_, err := s.Allocate(p, att("second"), nil)
	if !errors.Is(err, ErrExhausted) || !strings.Contains(err.Error(), "range set 1 (10.1.0.0/30)") {
		t.Fatalf("Allocate: %v; want set 1 exhausted", err)
	}
	if held := mustLookup(t, s, att("second")); len(held) != 0 {
		t.Errorf("rolled-back Allocate left %v held", held)
	}
	if after := dirNames(t, s); !slices.Equal(after, before) {
		t.Errorf("directory after rollback %v, want %v", after, before)
	}
}

func TestAllocateLastReserved(t *testing.T) {
	tests := []struct{ last, want string }{
		{"10.0.0.50", "10.0.0.51"},
		{"10.0.0.254", "10.0.0.2"}, // range end: wrap, skipping the gateway
		{"10.9.9.9", "10.0.0.2"},   // outside the set (config changed): from the start
		{"garbage", "10.0.0.2"},
		{"10.0.0.50\n", "10.0.0.51"},
	}
	for _, tt := range tests {
		t.Run(tt.last, func(t *testing.T) {
			s := newStore(t)
			writeFile(t, s, "last_reserved_ip.0", tt.last)
			got := mustAlloc(t, s, poolOf(t, "10.0.0.0/24"), att("pod"))
			if got[0] != netip.MustParseAddr(tt.want) {
				t.Errorf("allocated %v, want %s", got[0], tt.want)
			}
		})
	}
}

func TestAllocateBadAttachment(t *testing.T) {
	p, s := poolOf(t, "10.0.0.0/24"), newStore(t)
	for _, a := range []Attachment{{"", "eth0"}, {"  ", "eth0"}, {"pod", ""}, {"p\r\nx", "eth0"}, {"pod", "eth0\n"}, {"pod", "a\nb"}} {
		if _, err := s.Allocate(p, a, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("Allocate(%q): %v; want ErrInvalid", a, err)
		}
	}
	if names := dirNames(t, s); !slices.Equal(names, []string{"lock"}) {
		t.Errorf("directory %v, want just the lock", names)
	}
}

func TestFull(t *testing.T) {
	s := newStore(t)
	small, big := poolOf(t, "10.0.0.0/30"), poolOf(t, "10.0.0.0/30", "fd00::/64")
	for _, p := range []*Pool{small, big} {
		if full, err := s.Full(p); err != nil || full {
			t.Fatalf("Full on an empty store = %v, %v", full, err)
		}
	}
	mustAlloc(t, s, poolOf(t, "fd00::/64"), att("v6"))
	if full, err := s.Full(big); err != nil || full {
		t.Errorf("Full with one v6 lease = %v, %v; want false", full, err)
	}
	mustAlloc(t, s, small, att("v4"))
	if full, err := s.Full(big); err != nil || !full {
		t.Errorf("Full with the v4 set exhausted = %v, %v; want true", full, err)
	}
}

func mustRelease(t testing.TB, s *Store, a Attachment) []netip.Addr {
	t.Helper()
	got, err := s.Release(a)
	if err != nil {
		t.Fatalf("Release(%v): %v", a, err)
	}
	return got
}

func mustLookup(t testing.TB, s *Store, a Attachment) []netip.Addr {
	t.Helper()
	got, err := s.Lookup(a)
	if err != nil {
		t.Fatalf("Lookup(%v): %v", a, err)
	}
	return got
}
