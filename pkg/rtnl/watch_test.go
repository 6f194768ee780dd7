package rtnl

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// TestWatch: a Watch of the node netns says changed after each link,
// address and route change there, whoever made it, and not otherwise;
// changes in another netns do not reach it.
func TestWatch(t *testing.T) {
	node, other := testenv.NewNode(t), testenv.NewNS(t, "other")
	w, err := inNetns(t, node).Watch()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// A change's own notification is queued before its command returns;
	// the kernel may send one more a little later (a link's carrier,
	// through its link watch), so "nothing" is asked up to three times,
	// 20 ms apart: a Watch that never drains fails every time.
	changed := func(want bool, after string) {
		t.Helper()
		got, err := w.Changed()
		for try := 1; !want && got && err == nil && try < 3; try++ {
			time.Sleep(20 * time.Millisecond)
			got, err = w.Changed()
		}
		if err != nil || got != want {
			t.Errorf("after %s: Changed = %t, %v; want %t", after, got, err, want)
		}
	}
	changed(false, "opening")
	testenv.Run(t, node, "ip", "link", "add", "w0", "type", "veth", "peer", "name", "w1")
	changed(true, "link add")
	// No link-local addresses: their DAD would change the links later.
	testenv.Run(t, node, "ip", "link", "set", "w0", "addrgenmode", "none")
	testenv.Run(t, node, "ip", "link", "set", "w1", "addrgenmode", "none")
	_, _ = w.Changed() // whatever those said
	for _, argv := range [][]string{
		{"ip", "link", "set", "w1", "up"},
		{"ip", "link", "set", "w0", "up"},
		{"ip", "addr", "add", "10.9.0.1/24", "dev", "w0"},
		{"ip", "addr", "add", "fd00:9::1/64", "dev", "w0", "nodad"},
		{"ip", "route", "add", "10.8.0.0/24", "via", "10.9.0.2", "proto", "78"},
		{"ip", "route", "del", "10.8.0.0/24"},
		{"ip", "link", "set", "w0", "mtu", "1400"},
		{"ip", "link", "del", "w0"},
	} {
		testenv.Run(t, node, argv...)
		changed(true, argv[1]+" "+argv[2])
		changed(false, "draining")
	}
	testenv.Run(t, other, "ip", "link", "add", "w2", "type", "veth", "peer", "name", "w3")
	changed(false, "a link added in another netns")
}

// TestLinkIPv6ByName: accept_ra as the link's reply carries it matches
// /proc/sys for each value set there; a missing link is netlink's
// LinkNotFoundError.
func TestLinkIPv6ByName(t *testing.T) {
	node := testenv.NewNode(t)
	testenv.Run(t, node, "ip", "link", "add", "br9", "type", "bridge")
	c := inNetns(t, node)
	for _, v := range []int32{1, 2, 0} {
		testenv.Run(t, node, "sysctl", "-q", "-w", fmt.Sprintf("net.ipv6.conf.br9.accept_ra=%d", v))
		l, v6, err := c.LinkIPv6ByName("br9")
		if err != nil {
			t.Fatal(err)
		}
		if l.Attrs().Name != "br9" || !v6.On || v6.AcceptRA != v {
			t.Errorf("accept_ra %d: link %s, %+v", v, l.Attrs().Name, v6)
		}
	}
	if _, _, err := c.LinkIPv6ByName("nosuch0"); !errors.As(err, new(netlink.LinkNotFoundError)) {
		t.Errorf("missing link: %v, want LinkNotFoundError", err)
	}
}

// TestForwarding: Forwarding reads what /proc/sys says for each family.
func TestForwarding(t *testing.T) {
	node := testenv.NewNode(t)
	c := inNetns(t, node)
	for _, on := range []bool{false, true, false} {
		v := map[bool]string{false: "0", true: "1"}[on]
		testenv.Run(t, node, "sysctl", "-q", "-w", "net.ipv4.ip_forward="+v, "net.ipv6.conf.all.forwarding="+v)
		for _, v6 := range []bool{false, true} {
			if got, err := c.Forwarding(v6); err != nil || got != on {
				t.Errorf("forwarding %s, IPv6 %t: Forwarding = %t, %v", v, v6, got, err)
			}
		}
	}
}
