package rules

import (
	"encoding/binary"
	"fmt"
	"slices"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/nodebridge/nodebridge/internal/testenv"
)

// tableMsg builds one NFT_MSG_NEWTABLE message as the kernel sends it in a
// dump: a flags attribute before the name, to show that the name is found
// among others.
func tableMsg(family byte, name string) []byte {
	body := append([]byte{family, 0, 0, 0}, nlAttr(unix.NFTA_TABLE_FLAGS, []byte{0, 0, 0, 0})...)
	body = append(body, nlAttr(unix.NFTA_TABLE_NAME, append([]byte(name), 0))...)
	return nlMsg(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_NEWTABLE, body)
}

func nlMsg(typ uint16, body []byte) []byte {
	m := make([]byte, unix.SizeofNlMsghdr, unix.SizeofNlMsghdr+len(body))
	binary.NativeEndian.PutUint32(m, uint32(unix.SizeofNlMsghdr+len(body)))
	binary.NativeEndian.PutUint16(m[4:], typ)
	return append(m, body...)
}

func TestParseTables(t *testing.T) {
	ip, inet := byte(nftables.TableFamilyIPv4), byte(nftables.TableFamilyINet)
	errno := make([]byte, 4)
	binary.NativeEndian.PutUint32(errno, uint32(1<<32-int64(unix.EPERM))) // -EPERM
	tests := []struct {
		name     string
		part     []byte
		want     []string // family/name
		wantDone bool
		wantErr  bool
	}{
		{"two tables, more to come", append(tableMsg(ip, "filter"), tableMsg(inet, "nodebridge")...), []string{"2/filter", "1/nodebridge"}, false, false},
		{"a table and the end", append(tableMsg(ip, "nat"), nlMsg(unix.NLMSG_DONE, make([]byte, 4))...), []string{"2/nat"}, true, false},
		{"an empty dump", nlMsg(unix.NLMSG_DONE, make([]byte, 4)), nil, true, false},
		{"a table without a name", nlMsg(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_NEWTABLE, []byte{ip, 0, 0, 0}), nil, false, false},
		{"an error", nlMsg(unix.NLMSG_ERROR, errno), nil, false, true},
		{"a message longer than the part", tableMsg(ip, "filter")[:20], nil, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tables []*nftables.Table
			done, err := parseTables(tt.part, &tables)
			if (err != nil) != tt.wantErr || done != tt.wantDone {
				t.Fatalf("parseTables = done %v, err %v; want done %v, error %v", done, err, tt.wantDone, tt.wantErr)
			}
			if got := tableNames(tables); !slices.Equal(got, tt.want) {
				t.Errorf("tables = %q, want %q", got, tt.want)
			}
		})
	}
}

func tableNames(tables []*nftables.Table) []string {
	var out []string
	for _, t := range tables {
		out = append(out, fmt.Sprintf("%d/%s", t.Family, t.Name))
	}
	return out
}

// TestKernelListTables compares listTables with google/nftables' ListTables,
// which it replaces, on a ruleset with tables of several families.
func TestKernelListTables(t *testing.T) {
	name := testenv.NewNS(t, "tables")
	for _, table := range []string{"ip filter", "ip6 nat", "inet fw", "bridge br", "netdev nd", "arp a"} {
		testenv.Run(t, name, "nft", "add table "+table)
	}
	err := ns.WithNetNSPath(testenv.Path(name), func(ns.NetNS) error {
		got, err := listTables()
		if err != nil {
			return err
		}
		c, err := nftables.New()
		if err != nil {
			return err
		}
		want, err := c.ListTables()
		if err != nil {
			return err
		}
		g, w := tableNames(got), tableNames(want)
		slices.Sort(g)
		slices.Sort(w)
		if !slices.Equal(g, w) || len(g) != 6 {
			t.Errorf("listTables = %q, want %q (6 tables)", g, w)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("list tables in %s: %v", name, err)
	}
}

func TestParseGeneration(t *testing.T) {
	reply := make([]byte, unix.SizeofNlMsghdr+4+8)
	binary.NativeEndian.PutUint16(reply[4:], unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_NEWGEN)
	attr := reply[unix.SizeofNlMsghdr+4:]
	binary.NativeEndian.PutUint16(attr, 8)
	binary.NativeEndian.PutUint16(attr[2:], unix.NFTA_GEN_ID)
	binary.BigEndian.PutUint32(attr[4:], 4242)
	if gen, err := parseGeneration(reply); err != nil || gen != 4242 {
		t.Errorf("parseGeneration = %d, %v; want 4242", gen, err)
	}
	for name, b := range map[string][]byte{
		"short":   reply[:10],
		"no attr": reply[:unix.SizeofNlMsghdr+4],
		"bad len": append(append([]byte{}, reply[:unix.SizeofNlMsghdr+4]...), 0xff, 0, 1, 0),
	} {
		if _, err := parseGeneration(b); err == nil {
			t.Errorf("parseGeneration(%s) succeeded", name)
		}
	}
}
