package rules

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
)

func TestFakeRecords(t *testing.T) {
	var f Fake
	ctx := t.Context()
	n := Network{Name: "a", Subnets: prefixes("10.1.0.0/16")}
	if err := f.CheckNetwork(ctx, n); !errors.Is(err, ErrMissing) {
		t.Errorf("CheckNetwork before Ensure: %v, want ErrMissing", err)
	}
	if err := f.EnsureNetwork(ctx, n); err != nil {
		t.Fatalf("EnsureNetwork: %v", err)
	}
	n.Subnets[0] = prefixes("10.9.0.0/16")[0] // the fake keeps its own copy
	if got, ok := f.Network("a"); !ok || !slices.Equal(got.Subnets, prefixes("10.1.0.0/16")) {
		t.Errorf("Network(a) = %v, %v; want 10.1.0.0/16, true", got, ok)
	}
	if err := f.CheckNetwork(ctx, n); !errors.Is(err, ErrMissing) {
		t.Errorf("CheckNetwork with other subnets: %v, want ErrMissing", err)
	}
	if err := f.CheckNetwork(ctx, Network{Name: "a", Subnets: prefixes("10.1.0.0/16")}); err != nil {
		t.Errorf("CheckNetwork as ensured: %v", err)
	}
	if !f.Ensured("a") || f.Ensured("b") {
		t.Errorf("Ensured(a), Ensured(b) = %v, %v; want true, false", f.Ensured("a"), f.Ensured("b"))
	}
	for range 2 { // deleting is idempotent
		if err := f.DeleteNetwork(ctx, Network{Name: "a"}); err != nil {
			t.Errorf("DeleteNetwork: %v", err)
		}
	}
	if f.Ensured("a") {
		t.Error("Ensured(a) after DeleteNetwork")
	}
	for op, want := range map[Op]int{OpEnsure: 1, OpCheck: 3, OpDelete: 2} {
		if got := f.Calls(op); got != want {
			t.Errorf("Calls(%s) = %d, want %d", op, got, want)
		}
	}
}

func TestFakeInjectedError(t *testing.T) {
	var f Fake
	ctx := t.Context()
	boom := errors.New("boom")
	f.SetErr(OpEnsure, boom)
	if err := f.EnsureNetwork(ctx, Network{Name: "a"}); !errors.Is(err, boom) {
		t.Errorf("EnsureNetwork with injected error: %v, want boom", err)
	}
	if f.Ensured("a") || f.Calls(OpEnsure) != 1 {
		t.Errorf("failed Ensure: Ensured %v, Calls %d; want false, 1", f.Ensured("a"), f.Calls(OpEnsure))
	}
	if err := f.DeleteNetwork(ctx, Network{Name: "a"}); err != nil {
		t.Errorf("DeleteNetwork, no error injected for it: %v", err)
	}
	f.SetErr(OpEnsure, nil)
	if err := f.EnsureNetwork(ctx, Network{Name: "a"}); err != nil || !f.Ensured("a") {
		t.Errorf("EnsureNetwork after clearing the error: %v, Ensured %v", err, f.Ensured("a"))
	}
}

func TestFakeCanceled(t *testing.T) {
	var f Fake
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := f.EnsureNetwork(ctx, Network{Name: "a"}); !errors.Is(err, context.Canceled) || f.Ensured("a") {
		t.Errorf("EnsureNetwork canceled: %v, Ensured %v; want context.Canceled, false", err, f.Ensured("a"))
	}
}

func TestFakeConcurrent(t *testing.T) {
	var f Fake
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			n := Network{Name: fmt.Sprintf("n%d", i%4)}
			if err := f.EnsureNetwork(t.Context(), n); err != nil {
				t.Errorf("EnsureNetwork: %v", err)
			}
			_ = f.Ensured(n.Name) // result varies with scheduling; run for the race detector
		})
	}
	wg.Wait()
	if got := f.Calls(OpEnsure); got != 16 {
		t.Errorf("Calls(ensure) = %d, want 16", got)
	}
	for i := range 4 {
		if !f.Ensured(fmt.Sprintf("n%d", i)) {
			t.Errorf("n%d not ensured", i)
		}
	}
}

func TestFakeNonMasquerade(t *testing.T) {
	var f Fake
	ctx := t.Context()
	n := Network{Name: "a", Subnets: prefixes("10.1.0.0/24"), NonMasquerade: prefixes("10.0.0.0/8")}
	if err := f.EnsureNetwork(ctx, n); err != nil {
		t.Fatalf("EnsureNetwork: %v", err)
	}
	n.NonMasquerade[0] = prefixes("10.9.0.0/16")[0] // the fake keeps its own copy
	if got, _ := f.Network("a"); !slices.Equal(got.NonMasquerade, prefixes("10.0.0.0/8")) {
		t.Errorf("Network(a).NonMasquerade = %v, want 10.0.0.0/8", got.NonMasquerade)
	}
	if err := f.CheckNetwork(ctx, n); !errors.Is(err, ErrMissing) {
		t.Errorf("CheckNetwork with other non-masquerade prefixes: %v, want ErrMissing", err)
	}
	n.NonMasquerade[0] = prefixes("10.0.0.0/8")[0]
	if err := f.CheckNetwork(ctx, n); err != nil {
		t.Errorf("CheckNetwork as ensured: %v", err)
	}
}
