package bridge

import (
	"encoding/binary"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// announce sends one gratuitous ARP per IPv4 address from the pod's
// interface, so neighbours holding a stale entry for a reused address update
// it at once. It is best effort: a pod works without it, so errors are
// dropped rather than failing the ADD.
//
// Equivalent to: arping -U -c1 -I IFNAME ADDR
func announce(link netlink.Link, ips []*current.IPConfig) {
	mac := link.Attrs().HardwareAddr
	if len(mac) != 6 {
		return
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ARP)))
	if err != nil {
		return
	}
	defer unix.Close(fd)
	to := &unix.SockaddrLinklayer{
		Protocol: htons(unix.ETH_P_ARP),
		Ifindex:  link.Attrs().Index,
		Halen:    6,
		Addr:     [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	}
	for _, ip := range ips {
		if v4 := ip.Address.IP.To4(); v4 != nil {
			// best effort, see above
			_ = unix.Sendto(fd, garpPacket(mac, v4), 0, to)
		}
	}
}

// garpPacket is an ARP request whose sender and target address are both ip.
func garpPacket(mac []byte, ip []byte) []byte {
	p := make([]byte, 28)
	binary.BigEndian.PutUint16(p[0:], 1)      // hardware: Ethernet
	binary.BigEndian.PutUint16(p[2:], 0x0800) // protocol: IPv4
	p[4], p[5] = 6, 4
	binary.BigEndian.PutUint16(p[6:], 1) // request
	copy(p[8:], mac)
	copy(p[14:], ip)
	copy(p[24:], ip) // target hardware address stays zero
	return p
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
