package agent

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// waitFor polls f until it returns nil, failing t with its last error after within.
func waitFor(t *testing.T, within time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fdb is the forwarding entries of dev as "mac dst ip", sorted; none when
// dev is missing.
func fdb(t *testing.T, th *testHost, dev string) []string {
	t.Helper()
	out, err := testenv.RunErr(th.name, "bridge", "fdb", "show", "dev", dev)
	if err != nil {
		return nil
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(l); len(f) >= 3 && f[1] == "dst" {
			got = append(got, f[0]+" dst "+f[2])
		}
	}
	slices.Sort(got)
	return got
}

func sameFDB(t *testing.T, th *testHost, dev string, want ...string) error {
	if got := fdb(t, th, dev); !slices.Equal(got, want) {
		return errors.New("fdb of " + dev + ": got " + strings.Join(got, ", ") + "; want " + strings.Join(want, ", "))
	}
	return nil
}

// With --backend=auto, an on-link peer is routed the host-gw way and an
// off-link one through nb.vxlan; what is deleted by hand comes back, a
// peer's new address replaces its entry, and the device goes with the last
// off-link peer.
func TestLoopKernelTunnel(t *testing.T) {
	th := newHost(t)
	if out, err := testenv.RunErr(th.name, "ip", "link", "add", "vxprobe", "type", "vxlan", "id", "9", "dstport", "4789"); err != nil {
		t.Skipf("kernel has no VXLAN devices: %v %s", err, out)
	}
	testenv.Run(t, th.name, "ip", "link", "del", "vxprobe")
	testenv.Run(t, th.name, "ip", "route", "add", "default", "via", "198.18.0.1")
	own := node("a", []string{"10.244.0.0/24"}, "198.18.0.11")
	b := node("b", []string{"10.244.1.0/24"}, "198.18.0.12")
	c := node("c", []string{"10.244.2.0/24"}, "192.0.2.13")
	src := &staticNodes{}
	src.set(own, b, c)
	a, _ := startAgentWith(t, th, src, func(*Config) {})
	waitRoutes(t, th, 5*time.Second, "10.244.1.0/24 via 198.18.0.12 dev ul0", "10.244.2.0/24 via 10.244.2.0 dev nb.vxlan onlink")
	waitReady(t, a, 5*time.Second)
	if err := sameFDB(t, th, TunnelV4, "0e:6e:c0:00:02:0d dst 192.0.2.13"); err != nil {
		t.Error(err)
	}
	if got := testenv.Run(t, th.name, "ip", "neigh", "show", "dev", TunnelV4); !strings.Contains(got, "10.244.2.0 lladdr 0e:6e:c0:00:02:0d PERMANENT") {
		t.Errorf("neighbours: %s", got)
	}

	testenv.Run(t, th.name, "bridge", "fdb", "del", "0e:6e:c0:00:02:0d", "dev", TunnelV4, "dst", "192.0.2.13")
	waitFor(t, 5*time.Second, "fdb entry deleted by hand restored", func() error {
		return sameFDB(t, th, TunnelV4, "0e:6e:c0:00:02:0d dst 192.0.2.13")
	})
	testenv.Run(t, th.name, "ip", "link", "set", TunnelV4, "down")
	waitRoutes(t, th, 5*time.Second, "10.244.1.0/24 via 198.18.0.12 dev ul0", "10.244.2.0/24 via 10.244.2.0 dev nb.vxlan onlink")
	waitFor(t, 5*time.Second, "device set down by hand up again", func() error {
		if out := testenv.Run(t, th.name, "ip", "-br", "link", "show", TunnelV4); !strings.Contains(out, "UNKNOWN") && !strings.Contains(out, "UP") {
			return errors.New(out)
		}
		return nil
	})
	testenv.Run(t, th.name, "ip", "link", "del", TunnelV4)
	waitRoutes(t, th, 5*time.Second, "10.244.1.0/24 via 198.18.0.12 dev ul0", "10.244.2.0/24 via 10.244.2.0 dev nb.vxlan onlink")
	waitFor(t, 5*time.Second, "device deleted by hand restored", func() error {
		return sameFDB(t, th, TunnelV4, "0e:6e:c0:00:02:0d dst 192.0.2.13")
	})

	c2 := node("c", []string{"10.244.2.0/24"}, "192.0.2.23")
	src.set(own, b, c2)
	a.poke()
	waitFor(t, 5*time.Second, "c's new InternalIP", func() error {
		return sameFDB(t, th, TunnelV4, "0e:6e:c0:00:02:17 dst 192.0.2.23")
	})

	src.set(own, b)
	a.poke()
	waitRoutes(t, th, 5*time.Second, "10.244.1.0/24 via 198.18.0.12 dev ul0")
	waitFor(t, 5*time.Second, "nb.vxlan gone with the last off-link peer", func() error {
		if out, err := testenv.RunErr(th.name, "ip", "link", "show", TunnelV4); err == nil {
			return errors.New("still there: " + out)
		}
		return nil
	})
}

// With --backend=host-gw an off-link peer makes the node unready, saying
// which peer and what would reach it.
func TestLoopKernelHostGWUnreachable(t *testing.T) {
	th := newHost(t)
	src := &staticNodes{}
	src.set(node("a", []string{"10.244.0.0/24"}, "198.18.0.11"), node("b", []string{"10.244.1.0/24"}, "198.18.0.12"),
		node("c", []string{"10.244.2.0/24"}, "192.0.2.13"))
	a, _ := startAgentWith(t, th, src, func(c *Config) { c.Backend = BackendHostGW })
	waitRoutes(t, th, 5*time.Second, "10.244.1.0/24 via 198.18.0.12 dev ul0")
	waitReason(t, a, "c 10.244.2.0/24 (InternalIP 192.0.2.13 not on-link on ul0)")
	if _, reason := a.ready.get(); !strings.Contains(reason, "--backend=auto") {
		t.Errorf("reason %q: does not say what would reach c", reason)
	}
	src.set(node("a", []string{"10.244.0.0/24"}, "198.18.0.11"), node("b", []string{"10.244.1.0/24"}, "198.18.0.12"))
	a.poke()
	waitReady(t, a, 5*time.Second)
}

// The node's own InternalIP changes: the device is made again with the new
// local address and MAC, and a peer now on-link is routed the host-gw way.
func TestLoopKernelOwnAddressMoves(t *testing.T) {
	th := newHost(t)
	testenv.Run(t, th.name, "ip", "route", "add", "default", "via", "198.18.0.1")
	src := &staticNodes{}
	c := node("c", []string{"10.244.2.0/24"}, "192.0.2.13")
	src.set(node("a", []string{"10.244.0.0/24"}, "198.18.0.11"), c)
	a, _ := startAgentWith(t, th, src, func(*Config) {})
	waitRoutes(t, th, 5*time.Second, "10.244.2.0/24 via 10.244.2.0 dev nb.vxlan onlink")
	testenv.Run(t, th.name, "ip", "addr", "flush", "dev", "ul0", "scope", "global")
	testenv.Run(t, th.name, "ip", "addr", "add", "192.0.2.11/24", "dev", "ul0")
	testenv.Run(t, th.name, "ip", "route", "replace", "default", "via", "192.0.2.1")
	src.set(node("a", []string{"10.244.0.0/24"}, "192.0.2.11"), c)
	a.poke()
	waitRoutes(t, th, 5*time.Second, "10.244.2.0/24 via 192.0.2.13 dev ul0")
}
