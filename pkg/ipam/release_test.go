package ipam

import (
	"net/netip"
	"slices"
	"testing"
)

// seed fills a store with what reference host-local and older versions
// leave behind: current records, a legacy ID-only record, a pod with two
// interfaces, and the bookkeeping files.
func seed(t *testing.T) *Store {
	t.Helper()
	s := newStore(t)
	for name, content := range map[string]string{
		"10.0.0.2":           "pod-a\r\neth0",
		"fd00::2":            "pod-a\r\neth0",
		"10.0.0.3":           "pod-b\r\neth0",
		"10.0.0.4":           "pod-b\r\nnet1",
		"10.0.0.5":           "pod-old", // written by host-local before ifname was recorded
		"10.0.0.6":           "pod-c\r\neth0",
		"last_reserved_ip.0": "10.0.0.6",
		"last_reserved_ip.1": "fd00::2",
		".tmp-crashed":       "pod-z\r\neth0",
	} {
		writeFile(t, s, name, content)
	}
	return s
}

func TestLookupAndRelease(t *testing.T) {
	tests := []struct {
		name string
		a    Attachment
		want []string
	}{
		{"both families", att("pod-a"), []string{"10.0.0.2", "fd00::2"}},
		{"one ifname of two", Attachment{"pod-b", "net1"}, []string{"10.0.0.4"}},
		{"padded ID", Attachment{" pod-c ", "eth0"}, []string{"10.0.0.6"}},
		{"legacy record, any ifname", Attachment{"pod-old", "whatever"}, []string{"10.0.0.5"}},
		{"other ifname", Attachment{"pod-c", "net1"}, nil},
		{"unknown", att("nobody"), nil},
		{"empty ID", Attachment{"", ""}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := seed(t)
			before := dirNames(t, s)
			if got := mustLookup(t, s, tt.a); !slices.Equal(got, addrs(tt.want...)) {
				t.Errorf("Lookup = %v, want %v", got, tt.want)
			}
			if got := mustRelease(t, s, tt.a); !slices.Equal(got, addrs(tt.want...)) {
				t.Errorf("Release = %v, want %v", got, tt.want)
			}
			if got := mustLookup(t, s, tt.a); len(got) != 0 {
				t.Errorf("Lookup after Release = %v", got)
			}
			if got := mustRelease(t, s, tt.a); got != nil {
				t.Errorf("second Release = %v, want nil", got)
			}
			wantLeft := slices.DeleteFunc(before, func(n string) bool {
				a, err := netip.ParseAddr(n)
				return err == nil && slices.Contains(addrs(tt.want...), a)
			})
			if left := dirNames(t, s); !slices.Equal(left, wantLeft) {
				t.Errorf("directory after Release %v, want %v", left, wantLeft)
			}
			checkIndex(t, s)
		})
	}
}

func TestAttachments(t *testing.T) {
	got, err := seed(t).Attachments()
	want := []Attachment{att("pod-a"), att("pod-b"), {"pod-b", "net1"}, att("pod-c"), {"pod-old", ""}}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("Attachments = %v, %v; want %v", got, err, want)
	}
	if got, err := newStore(t).Attachments(); err != nil || len(got) != 0 {
		t.Errorf("Attachments of an empty store = %v, %v", got, err)
	}
}

func TestGC(t *testing.T) {
	tests := []struct {
		name  string
		valid []Attachment
		gone  []Attachment
		left  []string // allocation files left
	}{
		{"nothing valid", nil,
			[]Attachment{att("pod-a"), att("pod-b"), {"pod-b", "net1"}, att("pod-c"), {"pod-old", ""}}, nil},
		{"all valid", []Attachment{att("pod-a"), att("pod-b"), {"pod-b", "net1"}, att("pod-c"), att("pod-old")},
			nil, []string{"10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6", "fd00::2"}},
		{"one ifname gone, legacy kept by ID", []Attachment{att("pod-a"), att("pod-b"), att("pod-c"), {"pod-old", "eth3"}},
			[]Attachment{{"pod-b", "net1"}}, []string{"10.0.0.2", "10.0.0.3", "10.0.0.5", "10.0.0.6", "fd00::2"}},
		{"same ID, other ifname", []Attachment{{"pod-a", "net9"}, {" pod-c", "eth0"}},
			[]Attachment{att("pod-a"), att("pod-b"), {"pod-b", "net1"}, {"pod-old", ""}}, []string{"10.0.0.6"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := seed(t)
			gone, err := s.GC(tt.valid)
			if err != nil || !slices.Equal(gone, tt.gone) {
				t.Errorf("GC = %v, %v; want %v", gone, err, tt.gone)
			}
			// Bookkeeping survives; the crashed writer's temp file does not.
			want := append(slices.Clone(tt.left), "last_reserved_ip.0", "last_reserved_ip.1", "lock")
			slices.Sort(want)
			if left := dirNames(t, s); !slices.Equal(left, want) {
				t.Errorf("directory after GC %v, want %v", left, want)
			}
			if got := readFile(t, s, "last_reserved_ip.0"); got != "10.0.0.6" {
				t.Errorf("last_reserved_ip.0 = %q after GC", got)
			}
			checkIndex(t, s)
		})
	}
}
