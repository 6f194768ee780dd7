package bridge

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// foreignLinkTypes are link types a node may have under any name, all
// built into the kernels that run the plugin (dummy, a module, is not);
// each test makes one under the name nodebridge derives for a host veth.
var foreignLinkTypes = []string{"bridge", "macvlan"}

// addForeignLink makes a link of typ named name in the node, down; a
// macvlan on a bridge of its own.
func addForeignLink(t *testing.T, node, name, typ string) {
	t.Helper()
	if typ == "macvlan" {
		testenv.Run(t, node, "ip", "link", "add", "nbparent0", "type", "bridge")
		testenv.Run(t, node, "ip", "link", "add", name, "link", "nbparent0", "type", typ)
		return
	}
	testenv.Run(t, node, "ip", "link", "add", name, "type", typ)
}

// wantLink fails t unless the node still has name, of type typ.
func wantLink(t *testing.T, node, name, typ string) {
	t.Helper()
	if out := testenv.Run(t, node, "ip", "-d", "-o", "link", "show", "dev", name); !strings.Contains(out, " "+typ+" ") {
		t.Errorf("link %s is no longer a %s:\n%s", name, typ, out)
	}
}

// TestAddLeavesForeignLink: a link that is not a veth but holds the name
// of the pod's host veth fails the ADD, naming it and its type, and stays;
// DEL succeeds and leaves it too.
func TestAddLeavesForeignLink(t *testing.T) {
	for _, typ := range foreignLinkTypes {
		t.Run(typ, func(t *testing.T) {
			tn := newTestNet(t, "")
			p := tn.pod(t, "foreign-"+typ)
			host := hostVethName(p)
			addForeignLink(t, tn.node, host, typ)
			err := tn.add(p)
			if err == nil || !strings.Contains(err.Error(), "link "+host+" is a "+typ+", not a veth") {
				t.Fatalf("Add error = %v, want one naming %s and its type %s", err, host, typ)
			}
			wantLink(t, tn.node, host, typ)
			if ips := tn.allocations(t); len(ips) != 0 {
				t.Errorf("allocations after the failed Add: %v", ips)
			}
			tn.host.Reaper = ""
			if err := tn.del(p); err != nil {
				t.Fatalf("Del: %v", err)
			}
			wantLink(t, tn.node, host, typ)
		})
	}
}

// TestGCAndReaperLeaveForeignLink: GC releasing an attachment whose host
// veth name is now held by another type of link, and a reaper told to
// delete such a link, leave it.
func TestGCAndReaperLeaveForeignLink(t *testing.T) {
	for _, typ := range foreignLinkTypes {
		t.Run(typ, func(t *testing.T) {
			tn := newTestNet(t, "")
			p := tn.pod(t, "gc-"+typ)
			host := hostVethName(p)
			if err := tn.add(p); err != nil {
				t.Fatalf("Add: %v", err)
			}
			testenv.Run(t, tn.node, "ip", "link", "del", host)
			addForeignLink(t, tn.node, host, typ)
			if err := tn.inNode(func() error { return GC(context.Background(), tn.c, tn.host) }); err != nil {
				t.Fatalf("GC: %v", err)
			}
			if ips := tn.allocations(t); len(ips) != 0 {
				t.Errorf("GC left allocations: %v", ips)
			}
			wantLink(t, tn.node, host, typ)

			idx := strings.TrimSpace(testenv.Run(t, tn.node, "cat", "/sys/class/net/"+host+"/ifindex"))
			if _, err := strconv.Atoi(idx); err != nil {
				t.Fatalf("ifindex of %s: %q", host, idx)
			}
			if err := tn.inNode(func() error { return Reap(idx + ":" + host) }); err != nil {
				t.Fatalf("Reap: %v", err)
			}
			wantLink(t, tn.node, host, typ)
		})
	}
}

// TestRandomMAC: a random MAC is locally administered, unicast, and new
// each time.
func TestRandomMAC(t *testing.T) {
	seen := map[string]bool{}
	for range 16 {
		mac, err := randomMAC()
		if err != nil {
			t.Fatal(err)
		}
		if len(mac) != 6 || mac[0]&0x03 != 0x02 || seen[mac.String()] {
			t.Fatalf("randomMAC = %s: want 6 bytes, locally administered unicast, unseen", mac)
		}
		seen[mac.String()] = true
	}
}
