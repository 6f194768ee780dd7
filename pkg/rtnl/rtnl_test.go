package rtnl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// inNetns opens a Conn in the netns called name (made by the test), as
// OpenIn does for the agent's tests, closed when t ends.
func inNetns(t *testing.T, name string) *Conn {
	t.Helper()
	r, err := OpenIn(testenv.FD(t, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TestAgainstKernel: each request a Conn encodes makes what ip shows for
// its "Equivalent to" command, and a kernel refusal is the errno netlink
// gives (with the kernel's own message), so callers' errors.Is checks hold.
func TestAgainstKernel(t *testing.T) {
	node, pod := testenv.NewNode(t), testenv.NewNS(t, "pod")
	r := inNetns(t, node)
	if _, err := r.LinkByName("nosuchlink"); !errors.As(err, &netlink.LinkNotFoundError{}) {
		t.Fatalf("LinkByName of a missing link = %v, want netlink.LinkNotFoundError", err)
	}
	testenv.Run(t, node, "ip", "link", "add", "br0", "type", "bridge")
	br, err := r.LinkByName("br0")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := br.(*netlink.Bridge); !ok || br.Attrs().Index == 0 {
		t.Fatalf("LinkByName(br0) = %#v, want a bridge with its index", br)
	}
	if err := r.LinkSetUp(br); err != nil {
		t.Fatal(err)
	}
	if err := r.SetPromiscOn(br); err != nil {
		t.Fatal(err)
	}
	mac, peerMAC := net.HardwareAddr{0x02, 0, 0, 0, 0, 1}, net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
	la := netlink.NewLinkAttrs()
	la.Name, la.MTU, la.HardwareAddr, la.Flags = "vhost", 1400, mac, net.FlagUp
	v := &netlink.Veth{LinkAttrs: la, PeerName: "eth0", PeerHardwareAddr: peerMAC}
	podFD := testenv.FD(t, pod)
	index, gotMAC, err := r.AddVeth(v, br.Attrs().Index, podFD)
	if err != nil {
		t.Fatal(err)
	}
	if l, err := r.LinkByName("vhost"); err != nil || l.Attrs().Index != index || gotMAC.String() != mac.String() {
		t.Fatalf("AddVeth returned index %d, MAC %s; the host end is %v (%v)", index, gotMAC, l, err)
	}
	// Without a MAC the kernel picks one, which AddVeth returns.
	la2 := netlink.NewLinkAttrs()
	la2.Name = "vhost2"
	index2, mac2, err := r.AddVeth(&netlink.Veth{LinkAttrs: la2, PeerName: "eth1"}, 0, podFD)
	if err != nil {
		t.Fatal(err)
	}
	if l, err := r.LinkByIndex(index2); err != nil || l.Attrs().Name != "vhost2" || len(mac2) != 6 || l.Attrs().HardwareAddr.String() != mac2.String() {
		t.Fatalf("AddVeth without a MAC returned index %d, MAC %s; the link is %v (%v)", index2, mac2, l, err)
	}
	if _, _, err := r.AddVeth(v, br.Attrs().Index, podFD); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("AddVeth of an existing pair = %v, want EEXIST", err)
	}
	if err := r.SetPortFlags(index, true, true); err != nil {
		t.Fatal(err)
	}
	hostLink := testenv.Run(t, node, "ip", "-d", "link", "show", "vhost")
	for _, want := range []string{"mtu 1400", "master br0", ",UP>", "link/ether 02:00:00:00:00:01", "hairpin on", "isolated on"} {
		if !strings.Contains(hostLink, want) {
			t.Errorf("host end lacks %q:\n%s", want, hostLink)
		}
	}
	if out := testenv.Run(t, node, "ip", "link", "show", "br0"); !strings.Contains(out, "PROMISC") {
		t.Errorf("bridge not promiscuous:\n%s", out)
	}
	if out := testenv.Run(t, pod, "ip", "link", "show", "eth0"); !strings.Contains(out, "mtu 1400") || !strings.Contains(out, "link/ether 02:00:00:00:00:02") {
		t.Errorf("pod end:\n%s", out)
	}

	gw := &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(10, 9, 0, 1), Mask: net.CIDRMask(24, 32)}}
	if err := r.AddrAdd(br, gw); err != nil {
		t.Fatal(err)
	}
	if err := r.AddrAdd(br, gw); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("AddrAdd of an address there = %v, want EEXIST", err)
	}
	v6 := &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP("fd00:9::1"), Mask: net.CIDRMask(64, 128)}, Flags: unix.IFA_F_NODAD}
	if err := r.AddrAdd(br, v6); err != nil {
		t.Fatal(err)
	}
	addrs := testenv.Run(t, node, "ip", "addr", "show", "br0")
	for _, want := range []string{"inet 10.9.0.1/24 brd 10.9.0.255", "inet6 fd00:9::1/64"} {
		if !strings.Contains(addrs, want) {
			t.Errorf("bridge lacks %q:\n%s", want, addrs)
		}
	}
	if strings.Contains(addrs, "tentative") && strings.Contains(addrs, "fd00:9::1/64 scope global tentative") {
		t.Errorf("nodad address is tentative:\n%s", addrs)
	}

	link, err := r.LinkByName("vhost")
	if err != nil {
		t.Fatal(err)
	}
	table := 300
	routes := []*netlink.Route{
		{LinkIndex: link.Attrs().Index, Dst: &net.IPNet{IP: net.IPv4(10, 8, 0, 0), Mask: net.CIDRMask(16, 32)}, Gw: net.IPv4(10, 9, 0, 1).To4(), Priority: 7, MTU: 1300, AdvMSS: 1200},
		{LinkIndex: link.Attrs().Index, Dst: &net.IPNet{IP: net.IPv4(10, 7, 0, 0), Mask: net.CIDRMask(16, 32)}, Scope: netlink.SCOPE_LINK, Table: table},
	}
	testenv.Run(t, node, "ip", "addr", "add", "10.9.0.2/24", "dev", "vhost") // the gateway must be on-link from vhost
	for _, rt := range routes {
		if err := r.RouteAdd(rt); err != nil {
			t.Fatalf("RouteAdd %v: %v", rt, err)
		}
	}
	if err := r.RouteAdd(routes[0]); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("RouteAdd of a route there = %v, want EEXIST", err)
	}
	if out := testenv.Run(t, node, "ip", "route", "show", "10.8.0.0/16"); !strings.Contains(out, "via 10.9.0.1 dev vhost metric 7") ||
		!strings.Contains(out, "mtu 1300 advmss 1200") {
		t.Errorf("route: %q", out)
	}
	if out := testenv.Run(t, node, "ip", "route", "show", "table", "300"); !strings.Contains(out, "10.7.0.0/16 dev vhost scope link") {
		t.Errorf("route in table 300: %q", out)
	}

	n := &netlink.Neigh{LinkIndex: br.Attrs().Index, Family: netlink.FAMILY_V4, IP: net.IPv4(10, 9, 0, 5), HardwareAddr: peerMAC, State: netlink.NUD_STALE}
	if err := r.NeighSet(n); err != nil {
		t.Fatal(err)
	}
	if err := r.NeighSet(n); err != nil {
		t.Errorf("NeighSet again (replace) = %v", err)
	}
	if out := testenv.Run(t, node, "ip", "neigh", "show", "10.9.0.5"); !strings.Contains(out, "lladdr 02:00:00:00:00:02 STALE") {
		t.Errorf("neighbour: %q", out)
	}
	if err := r.NeighDel(n); err != nil {
		t.Fatal(err)
	}
	if err := r.NeighDel(n); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("NeighDel of a missing entry = %v, want ENOENT", err)
	}
}

// An error acknowledgement carries the kernel's message after the capped
// request header; a bare one is the errno alone, a zero one no error.
func TestAckError(t *testing.T) {
	ack := func(errno int32, tlvs bool, msg string) syscall.NetlinkMessage {
		data := binary.NativeEndian.AppendUint32(nil, uint32(-errno))
		data = append(data, make([]byte, unix.SizeofNlMsghdr)...)
		var flags uint16
		if tlvs {
			flags = unix.NLM_F_ACK_TLVS
			attr := binary.NativeEndian.AppendUint16(nil, uint16(unix.SizeofRtAttr+len(msg)+1))
			attr = binary.NativeEndian.AppendUint16(attr, unix.NLMSGERR_ATTR_MSG)
			data = append(append(data, attr...), append([]byte(msg), 0)...)
		}
		return syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: unix.NLMSG_ERROR, Flags: flags}, Data: data}
	}
	if err := ackError(ack(0, false, "")); err != nil {
		t.Errorf("zero ack = %v", err)
	}
	if err := ackError(ack(int32(unix.EEXIST), false, "")); err != syscall.EEXIST {
		t.Errorf("bare EEXIST = %v", err)
	}
	err := ackError(ack(int32(unix.EINVAL), true, "Invalid VLAN id"))
	if !errors.Is(err, syscall.EINVAL) || !strings.HasSuffix(err.Error(), ": Invalid VLAN id") {
		t.Errorf("EINVAL with message = %v", err)
	}
	if err := ackError(syscall.NetlinkMessage{Data: []byte{1}}); err == nil {
		t.Error("short ack: no error")
	}
}

// An IPv4 prefix counts in IPv4 bits whether its mask is 4 or 16 bytes.
func TestPrefixLen(t *testing.T) {
	for _, n := range []*net.IPNet{
		{IP: net.IPv4(10, 0, 0, 0).To4(), Mask: net.CIDRMask(16, 32)},
		{IP: net.IPv4(10, 0, 0, 0), Mask: net.CIDRMask(112, 128)},
	} {
		if ones, bits := prefixLen(n); ones != 16 || bits != 32 {
			t.Errorf("prefixLen(%v) = %d/%d, want 16/32", n, ones, bits)
		}
	}
	if ones, bits := prefixLen(&net.IPNet{IP: net.ParseIP("fd00::"), Mask: net.CIDRMask(64, 128)}); ones != 64 || bits != 128 {
		t.Errorf("IPv6 prefixLen = %d/%d", ones, bits)
	}
}

// decodeLink gives the fields it promises as netlink's LinkDeserialize
// does, for each kind of link an ADD meets.
func TestDecodeLinkMatchesNetlink(t *testing.T) {
	node, pod := testenv.NewNode(t), testenv.NewNS(t, "pod")
	testenv.Run(t, node, "ip", "link", "add", "br0", "mtu", "1400", "type", "bridge", "vlan_default_pvid", "7")
	testenv.Run(t, node, "ip", "link", "set", "br0", "up", "promisc", "on")
	testenv.Run(t, node, "ip", "link", "add", "v0", "master", "br0", "type", "veth", "peer", "name", "eth0", "netns", testenv.Path(pod))
	r := inNetns(t, node)
	h, err := netlink.NewHandleAt(netns.NsHandle(testenv.FD(t, node)), unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, name := range []string{"br0", "v0", "lo"} {
		got, err := r.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		want, err := h.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		g, w := got.Attrs(), want.Attrs()
		if got.Type() != want.Type() || g.Index != w.Index || g.Name != w.Name || g.Flags != w.Flags || g.RawFlags != w.RawFlags ||
			g.Promisc != w.Promisc || g.MTU != w.MTU || g.HardwareAddr.String() != w.HardwareAddr.String() ||
			g.MasterIndex != w.MasterIndex || g.ParentIndex != w.ParentIndex || g.NetNsID != w.NetNsID {
			t.Errorf("%s: decodeLink %s %+v\nnetlink          %s %+v", name, got.Type(), *g, want.Type(), *w)
		}
		if gb, ok := got.(*netlink.Bridge); ok {
			// Without CONFIG_BRIDGE_VLAN_FILTERING the kernel reports neither.
			wb := want.(*netlink.Bridge)
			if !samePtr(gb.VlanFiltering, wb.VlanFiltering) || !samePtr(gb.VlanDefaultPVID, wb.VlanDefaultPVID) {
				t.Errorf("bridge VLAN fields: filtering %v pvid %v, netlink %v %v", gb.VlanFiltering, gb.VlanDefaultPVID, wb.VlanFiltering, wb.VlanDefaultPVID)
			}
		}
	}
}

// A truncated or malformed attribute ends the walk; a short body is an
// error, never a panic.
func TestDecodeLinkMalformed(t *testing.T) {
	if _, err := decodeLink(make([]byte, 3)); err == nil {
		t.Error("short body: no error")
	}
	body := append(make([]byte, unix.SizeofIfInfomsg), 0xff, 0x00, byte(unix.IFLA_IFNAME), 0) // length 255 > rest
	if l, err := decodeLink(body); err != nil || l.Attrs().Name != "" {
		t.Errorf("overlong attribute: %v, %v", l, err)
	}
}

// samePtr reports whether a and b are both nil or point to equal values.
func samePtr[T comparable](a, b *T) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// TestNetnsIsTheSocketsNetns: Netns names the netns the socket was opened
// in, as an fstat of the netns file shows it, whichever thread asks.
func TestNetnsIsTheSocketsNetns(t *testing.T) {
	node, other := testenv.NewNode(t), testenv.NewNS(t, "other")
	r := inNetns(t, node)
	dev, ino, err := r.Netns()
	if err != nil {
		t.Fatal(err)
	}
	for name, same := range map[string]bool{node: true, other: false} {
		var st unix.Stat_t
		if err := unix.Fstat(testenv.FD(t, name), &st); err != nil {
			t.Fatal(err)
		}
		if got := st.Dev == dev && st.Ino == ino; got != same {
			t.Errorf("Netns = %d:%d; netns %s is %d:%d, same = %t, want %t", dev, ino, name, st.Dev, st.Ino, got, same)
		}
	}
}

// TestDumpsMatchNetlink: Links and Addrs list what netlink's LinkList and
// AddrList do, in a netns of a few links and addresses of both families,
// a point-to-point one included, and OpenIn reaches that netns.
func TestDumpsMatchNetlink(t *testing.T) {
	node := testenv.NewNode(t)
	for _, argv := range [][]string{
		{"ip", "link", "add", "a0", "type", "veth", "peer", "name", "a1"},
		{"ip", "link", "set", "a0", "mtu", "1400", "up"},
		{"ip", "addr", "add", "10.1.0.1/24", "dev", "a0"},
		{"ip", "addr", "add", "10.1.1.1", "peer", "10.1.1.2/32", "dev", "a0"},
		{"ip", "addr", "add", "fd00:1::1/64", "dev", "a1"},
		{"ip", "link", "set", "a1", "up"},
	} {
		testenv.Run(t, node, argv...)
	}
	c, h := connAndHandle(t, node)

	links, err := c.Links()
	if err != nil {
		t.Fatal(err)
	}
	want, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	key := func(l netlink.Link) string {
		a := l.Attrs()
		return fmt.Sprintf("%d %s mtu %d %s", a.Index, a.Name, a.MTU, l.Type())
	}
	var gotLinks, wantLinks []string
	for _, l := range links {
		gotLinks = append(gotLinks, key(l))
	}
	for _, l := range want {
		wantLinks = append(wantLinks, key(l))
	}
	if !slices.Equal(gotLinks, wantLinks) || len(gotLinks) != 3 {
		t.Errorf("Links = %q\nLinkList = %q", gotLinks, wantLinks)
	}

	addrs, err := c.Addrs()
	if err != nil {
		t.Fatal(err)
	}
	wantAddrs, err := h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	var got, exp []string
	for _, a := range addrs {
		got = append(got, fmt.Sprintf("%s@%d", a.Prefix, a.LinkIndex))
	}
	for _, a := range wantAddrs {
		ones, _ := a.Mask.Size()
		ip, _ := netip.AddrFromSlice(a.IP)
		exp = append(exp, fmt.Sprintf("%s@%d", netip.PrefixFrom(ip.Unmap(), ones), a.LinkIndex))
	}
	slices.Sort(got)
	slices.Sort(exp)
	if !slices.Equal(got, exp) || !slices.Contains(got, fmt.Sprintf("10.1.1.1/32@%d", mustIndex(t, c, "a0"))) {
		t.Errorf("Addrs = %q\nAddrList = %q", got, exp)
	}
}

func mustIndex(t *testing.T, c *Conn, name string) int {
	t.Helper()
	l, err := c.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().Index
}

// TestRoutesMatchNetlink: Routes lists the main table as netlink's
// RouteListFiltered with a table filter does, field for field of those it
// decodes, multipath and IPv6 metrics included; RouteDel deletes the
// listed route it is given, and only it.
func TestRoutesMatchNetlink(t *testing.T) {
	node := testenv.NewNode(t)
	for _, argv := range [][]string{
		{"ip", "link", "add", "a0", "type", "veth", "peer", "name", "a1"},
		{"ip", "link", "set", "a0", "up"},
		{"ip", "link", "set", "a1", "up"},
		{"ip", "addr", "add", "198.18.0.11/24", "dev", "a0"},
		{"ip", "addr", "add", "fd00:198:18::11/64", "dev", "a0", "nodad"},
		{"ip", "route", "add", "default", "via", "198.18.0.1"},
		{"ip", "route", "add", "10.244.1.0/24", "via", "198.18.0.12", "proto", "78"},
		{"ip", "route", "add", "10.244.2.0/24", "via", "198.18.0.13", "proto", "78", "metric", "7"},
		{"ip", "route", "add", "10.9.0.0/24", "nexthop", "via", "198.18.0.2", "weight", "2", "nexthop", "via", "198.18.0.3"},
		{"ip", "route", "add", "blackhole", "10.8.0.0/16"},
		{"ip", "route", "add", "10.7.0.0/16", "via", "198.18.0.4", "table", "100"},
		{"ip", "-6", "route", "add", "fd00:10:244:1::/64", "via", "fd00:198:18::12", "proto", "78"},
	} {
		testenv.Run(t, node, argv...)
	}
	// Enough routes that the dump takes several reads of the buffer.
	var batch strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&batch, "route add 10.%d.%d.0/24 via 198.18.0.%d\n", 100+i/256, i%256, 20+i%200)
	}
	batchFile := t.TempDir() + "/routes"
	if err := os.WriteFile(batchFile, []byte(batch.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, node, "ip", "-batch", batchFile)
	c, h := connAndHandle(t, node)
	key := func(r netlink.Route) string {
		hops := ""
		for _, nh := range r.MultiPath {
			hops += fmt.Sprintf(" [dev %d via %s hops %d flags %d]", nh.LinkIndex, nh.Gw, nh.Hops, nh.Flags)
		}
		return fmt.Sprintf("%d %v via %v src %v dev %d/%d metric %d table %d proto %d scope %d type %d flags %d tos %d%s",
			r.Family, r.Dst, r.Gw, r.Src, r.LinkIndex, r.ILinkIndex, r.Priority, r.Table, r.Protocol, r.Scope, r.Type, r.Flags, r.Tos, hops)
	}
	list := func() (got, want []string) {
		t.Helper()
		rs, err := c.Routes(unix.RT_TABLE_MAIN)
		if err != nil {
			t.Fatal(err)
		}
		wrs, err := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			got = append(got, key(r))
		}
		for _, r := range wrs {
			want = append(want, key(r))
		}
		return got, want
	}
	got, want := list()
	if !slices.Equal(got, want) || len(got) < 2008 {
		t.Fatalf("Routes:\n%s\nRouteListFiltered:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	rs, _ := c.Routes(unix.RT_TABLE_MAIN)
	var deleted int
	for i := range rs {
		if rs[i].Protocol == 78 {
			if err := c.RouteDel(&rs[i]); err != nil {
				t.Fatalf("RouteDel %s: %v", key(rs[i]), err)
			}
			deleted++
		}
	}
	got, _ = list()
	if deleted != 3 || len(got) != len(want)-3 || strings.Contains(strings.Join(got, "\n"), "proto 78") {
		t.Errorf("after deleting %d proto-78 routes:\n%s", deleted, strings.Join(got, "\n"))
	}
	if out := testenv.Run(t, node, "ip", "route", "show", "table", "100"); !strings.Contains(out, "10.7.0.0/16") {
		t.Errorf("table 100 lost its route: %q", out)
	}
}

// connAndHandle opens a Conn (with OpenIn) and a netlink Handle in the
// netns node, both closed when t ends.
func connAndHandle(t *testing.T, node string) (*Conn, *netlink.Handle) {
	t.Helper()
	fd := testenv.FD(t, node)
	c, err := OpenIn(fd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	h, err := netlink.NewHandleAt(netns.NsHandle(fd))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return c, h
}
