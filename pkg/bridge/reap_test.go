package bridge

import (
	"context"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// TestDelWithLostReaper: with a reaper that does nothing (/bin/true, as
// one killed before its work), DEL still releases the address and leaves
// the pair down; an ADD of the same attachment deletes that pair itself, and
// GC deletes one whose attachment is not valid, keeping the others.
func TestDelWithLostReaper(t *testing.T) {
	tn := newTestNet(t, "")
	tn.host.Reaper = "/bin/true"
	p := tn.pod(t, "lost-reaper")
	host := hostVethName(p)
	if err := tn.add(p); err != nil {
		t.Fatalf("Add: %v", err)
	}
	if err := tn.del(p); err != nil {
		t.Fatalf("Del: %v", err)
	}
	if ips := tn.allocations(t); len(ips) != 0 {
		t.Errorf("allocations after Del: %v, want none", ips)
	}
	if out := testenv.Run(t, tn.node, "ip", "-o", "link", "show", "dev", host); strings.Contains(out, ",UP") || strings.Contains(out, "<UP") {
		t.Errorf("host veth %s still up after Del:\n%s", host, out)
	}

	if err := tn.add(p); err != nil {
		t.Fatalf("Add of the same attachment with its retired pair still there: %v", err)
	}
	if out := testenv.Run(t, tn.node, "ip", "-o", "link", "show", "dev", host); !strings.Contains(out, "UP") {
		t.Errorf("host veth %s after the second Add is not up:\n%s", host, out)
	}
	if err := tn.del(p); err != nil {
		t.Fatalf("second Del: %v", err)
	}

	// A retired pair of a valid attachment stays; an up port of ours, and a
	// down port not named by nodebridge, stay whatever GC is told.
	valid := tn.pod(t, "valid")
	validHost := hostVethName(valid)
	testenv.Run(t, tn.node, "ip", "link", "add", validHost, "master", "nbt0", "type", "veth", "peer", "name", "pv")
	testenv.Run(t, tn.node, "ip", "link", "add", "other0", "master", "nbt0", "type", "veth", "peer", "name", "po")
	tn.c.ValidAttachments = []types.GCAttachment{{ContainerID: valid.ContainerID, IfName: valid.IfName}}
	if err := tn.inNode(func() error { return GC(context.Background(), tn.c, tn.host) }); err != nil {
		t.Fatalf("GC: %v", err)
	}
	out := testenv.Run(t, tn.node, "ip", "-o", "link", "show", "type", "veth")
	if strings.Contains(out, host) {
		t.Errorf("GC left the retired pair %s of an attachment not valid:\n%s", host, out)
	}
	for _, keep := range []string{validHost, "other0"} {
		if !strings.Contains(out, keep) {
			t.Errorf("GC deleted %s:\n%s", keep, out)
		}
	}
}
