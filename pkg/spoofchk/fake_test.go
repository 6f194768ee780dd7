package spoofchk

import (
	"context"
	"errors"
	"net"
	"testing"
)

func TestFake(t *testing.T) {
	ctx := t.Context()
	var f Fake
	a := Port{IfName: "nb0a", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 0xa}}
	if err := f.CheckPort(ctx, a); !errors.Is(err, ErrMissing) {
		t.Errorf("CheckPort before EnsurePort: %v, want ErrMissing", err)
	}
	if err := f.EnsurePort(ctx, a); err != nil {
		t.Fatalf("EnsurePort: %v", err)
	}
	a.MAC[5] = 0xff // the caller's later change must not reach the record
	if got := f.Allowed("nb0a"); got.String() != "02:00:00:00:00:0a" {
		t.Errorf("Allowed = %s, want 02:00:00:00:00:0a", got)
	}
	if err := f.CheckPort(ctx, a); !errors.Is(err, ErrMissing) {
		t.Errorf("CheckPort with another MAC: %v, want ErrMissing", err)
	}
	a.MAC[5] = 0xa
	if err := f.CheckPort(ctx, a); err != nil {
		t.Errorf("CheckPort: %v", err)
	}
	boom := errors.New("boom")
	f.SetErr(OpDelete, boom)
	if err := f.DeletePort(ctx, "nb0a"); !errors.Is(err, boom) || f.Allowed("nb0a") == nil {
		t.Errorf("DeletePort with an injected error: %v, port kept %v; want boom and the port kept", err, f.Allowed("nb0a") != nil)
	}
	f.SetErr(OpDelete, nil)
	for range 2 { // deleting an unknown port is not an error either
		if err := f.DeletePort(ctx, "nb0a"); err != nil || f.Allowed("nb0a") != nil {
			t.Errorf("DeletePort: %v, allowed %s", err, f.Allowed("nb0a"))
		}
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := f.EnsurePort(canceled, a); !errors.Is(err, context.Canceled) {
		t.Errorf("EnsurePort with a canceled context: %v", err)
	}
	if got := [3]int{f.Calls(OpEnsure), f.Calls(OpDelete), f.Calls(OpCheck)}; got != [3]int{2, 3, 3} {
		t.Errorf("calls (ensure, delete, check) = %v, want [2 3 3]", got)
	}
}
