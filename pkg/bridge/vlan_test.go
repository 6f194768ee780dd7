package bridge

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func vids(vs ...uint16) []uint16 { return vs }

func opTagged(vid uint16) vlanOp       { return vlanOp{vid: vid, end: vid} }
func opTaggedRange(a, b uint16) vlanOp { return vlanOp{vid: a, end: b} }
func opNative(vid uint16) vlanOp       { return vlanOp{vid: vid, end: vid, pvid: true, untagged: true} }
func opDel(vid uint16) vlanOp          { return vlanOp{del: true, vid: vid, end: vid} }

func TestPortVlanPlan(t *testing.T) {
	tests := []struct {
		name        string
		vlan        int
		trunk       []uint16
		preserve    bool
		defaultPVID uint16
		want        []vlanOp
	}{
		{"no vlan settings: no change", 0, nil, false, 1, nil},
		{"no vlan settings, preserve: no change", 0, nil, true, 1, nil},
		{"vlan drops the default PVID", 100, nil, false, 1, []vlanOp{opDel(1), opNative(100)}},
		{"vlan keeps the default with preserveDefaultVlan", 100, nil, true, 1, []vlanOp{opNative(100)}},
		{"bridge default PVID other than 1", 100, nil, false, 7, []vlanOp{opDel(7), opNative(100)}},
		{"bridge without default PVID: nothing to drop", 100, nil, false, 0, []vlanOp{opNative(100)}},
		{"vlan equal to the default PVID is dropped then re-added", 1, nil, false, 1, []vlanOp{opDel(1), opNative(1)}},
		{"trunk without vlan gets native VLAN 1", 0, vids(101), false, 1, []vlanOp{opDel(1), opTagged(101), opNative(1)}},
		{"trunk with preserve", 0, vids(101), true, 1, []vlanOp{opTagged(101), opNative(1)}},
		{"vlan and trunk: vlan is native, trunk tagged", 100, vids(101, 200, 201, 202), false, 1,
			[]vlanOp{opDel(1), opNative(100), opTagged(101), opTaggedRange(200, 202)}},
		{"consecutive ids coalesce into ranges", 0, vids(5, 6, 7, 9, 11, 12), true, 1,
			[]vlanOp{opTaggedRange(5, 7), opTagged(9), opTaggedRange(11, 12), opNative(1)}},
		{"vlan also in the trunk: added again tagged, as the reference does", 100, vids(100), true, 1,
			[]vlanOp{opNative(100), opTagged(100)}},
		{"full span", 0, vidSpan(1, 4094), false, 1, []vlanOp{opDel(1), opTaggedRange(1, 4094), opNative(1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := portVlanPlan(tt.vlan, tt.trunk, tt.preserve, tt.defaultPVID)
			if !slices.Equal(got, tt.want) {
				t.Errorf("portVlanPlan(%d, %v, %t, %d)\n got %v\nwant %v", tt.vlan, tt.trunk, tt.preserve, tt.defaultPVID, got, tt.want)
			}
			for _, op := range got {
				if op.pvid && op.end != op.vid {
					t.Errorf("op %v: the kernel refuses pvid on a range", op)
				}
			}
		})
	}
}

func vidSpan(a, b uint16) []uint16 {
	var s []uint16
	for v := a; v <= b; v++ {
		s = append(s, v)
	}
	return s
}

func TestVlanOpCommand(t *testing.T) {
	tests := []struct {
		op   vlanOp
		want string
	}{
		{opNative(100), "bridge vlan add dev nb0 vid 100 pvid untagged master"},
		{opTaggedRange(200, 299), "bridge vlan add dev nb0 vid 200-299 master"},
		{opDel(1), "bridge vlan del dev nb0 vid 1 master"},
		{vlanOp{del: true, vid: 3, end: 4}, "bridge vlan del dev nb0 vid 3-4 master"},
	}
	for _, tt := range tests {
		if got := tt.op.command("nb0"); got != tt.want {
			t.Errorf("%#v.command(nb0) = %q, want %q", tt.op, got, tt.want)
		}
	}
}

func TestTrunkIDs(t *testing.T) {
	n := func(v int) *int { return &v }
	tests := []struct {
		name  string
		trunk []VlanTrunk
		want  []uint16
	}{
		{"none", nil, nil},
		{"empty entry names nothing", []VlanTrunk{{}}, nil},
		{"single ids sorted", []VlanTrunk{{ID: n(300)}, {ID: n(101)}}, vids(101, 300)},
		{"span", []VlanTrunk{{MinID: n(200), MaxID: n(203)}}, vids(200, 201, 202, 203)},
		{"span and id in one entry", []VlanTrunk{{MinID: n(5), MaxID: n(6), ID: n(9)}}, vids(5, 6, 9)},
		{"overlaps counted once", []VlanTrunk{{MinID: n(1), MaxID: n(3)}, {ID: n(2)}, {MinID: n(3), MaxID: n(4)}}, vids(1, 2, 3, 4)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := trunkIDs(tt.trunk); !slices.Equal(got, tt.want) {
				t.Errorf("trunkIDs = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestVlanFiltering(t *testing.T) {
	tests := []struct {
		field string
		want  bool
		names string
	}{
		{`"vlan": 0`, false, ""},
		{`"vlan": 100`, true, "vlan 100"},
		{`"vlanTrunk": []`, true, "vlanTrunk"}, // present, even empty, as in the reference
		{`"vlanTrunk": [{"id": 5}]`, true, "vlanTrunk"},
		{`"vlan": 7, "vlanTrunk": [{"id": 5}]`, true, "vlan 7 and vlanTrunk"},
	}
	for _, tt := range tests {
		c := mustParse(t, conf(tt.field), testPod)
		if got := c.vlanFiltering(); got != tt.want {
			t.Errorf("%s: vlanFiltering = %t, want %t", tt.field, got, tt.want)
		}
		if tt.want && c.vlanFields() != tt.names {
			t.Errorf("%s: vlanFields = %q, want %q", tt.field, c.vlanFields(), tt.names)
		}
	}
}

func TestVlanNames(t *testing.T) {
	if got := vlanGatewayName("cni0", 100); got != "cni0.100" {
		t.Errorf("vlanGatewayName = %q, want cni0.100", got)
	}
	port := vlanPortName("cni0", 100)
	if len(port) != 15 || !strings.HasPrefix(port, "nb") {
		t.Errorf("vlanPortName = %q, want nb + 13 hex digits", port)
	}
	if port != vlanPortName("cni0", 100) {
		t.Error("vlanPortName is not stable")
	}
	for _, other := range []string{vlanPortName("cni0", 101), vlanPortName("cni1", 100), hostVethName(Pod{ContainerID: "cni0", IfName: "100"})} {
		if other == port {
			t.Errorf("vlanPortName(cni0, 100) = %q collides with another name", port)
		}
	}
}

func TestParseVlanGatewayName(t *testing.T) {
	ipamV4 := `"ipam": {"type": "host-local", "subnet": "10.1.0.0/24"}`
	tests := []struct {
		name   string
		fields []string
		ok     bool
	}{
		{"fits", []string{`"bridge": "br-0123456"`, `"vlan": 4094`, `"isGateway": true`, ipamV4}, true},
		{"too long", []string{`"bridge": "br-01234567"`, `"vlan": 4094`, `"isGateway": true`, ipamV4}, false},
		{"too long via isDefaultGateway", []string{`"bridge": "br-01234567"`, `"vlan": 4094`, `"isDefaultGateway": true`, ipamV4}, false},
		{"no gateway, no gateway interface", []string{`"bridge": "br-01234567"`, `"vlan": 4094`, ipamV4}, true},
		{"layer 2, no gateway interface", []string{`"bridge": "br-01234567"`, `"vlan": 4094`, `"isGateway": true`}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(conf(tt.fields...), testPod)
			if tt.ok {
				if err != nil {
					t.Errorf("Parse: %v", err)
				}
				return
			}
			wantOnly(t, err, ErrInvalid, fmt.Sprintf("vlan 4094 with isGateway: gateway interface %q", "br-01234567.4094"), "longer than 15 bytes")
		})
	}
}
