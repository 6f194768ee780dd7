package bridge

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"

	"github.com/nodebridge/nodebridge/pkg/rules"
)

// maxVlanID is the highest VLAN id a port can carry (4095 is reserved).
const maxVlanID = 4094

// validateVlan checks vlan and vlanTrunk with the reference's bounds, and
// that the gateway's VLAN interface name fits in IFNAMSIZ.
func (c *Config) validateVlan() []error {
	var errs []error
	if c.Vlan < 0 || c.Vlan > maxVlanID {
		errs = append(errs, problemf(ErrInvalid, "vlan %d: must be between 0 and %d", c.Vlan, maxVlanID))
	}
	for i, t := range c.VlanTrunk {
		errs = append(errs, t.validate(fmt.Sprintf("vlanTrunk[%d]", i))...)
	}
	if c.Vlan > 0 && c.IsGateway && c.layer3() && rules.CheckIfName(c.Bridge) == nil {
		if name := vlanGatewayName(c.Bridge, c.Vlan); len(name) > rules.MaxIfName {
			errs = append(errs, problemf(ErrInvalid, "vlan %d with isGateway: gateway interface %q (bridge.vlan) longer than %d bytes",
				c.Vlan, name, rules.MaxIfName))
		}
	}
	return errs
}

// validate checks one vlanTrunk entry found at path.
func (t VlanTrunk) validate(path string) []error {
	if (t.MinID == nil) != (t.MaxID == nil) {
		return []error{problemf(ErrInvalid, "%s: minID and maxID must be set together", path)}
	}
	var errs []error
	if t.MinID != nil && *t.MinID > *t.MaxID {
		errs = append(errs, problemf(ErrInvalid, "%s: minID %d greater than maxID %d", path, *t.MinID, *t.MaxID))
	}
	for _, f := range []struct {
		key string
		id  *int
	}{{"minID", t.MinID}, {"maxID", t.MaxID}, {"id", t.ID}} {
		if f.id != nil && (*f.id < 1 || *f.id > maxVlanID) {
			errs = append(errs, problemf(ErrInvalid, "%s.%s %d: must be between 1 and %d", path, f.key, *f.id, maxVlanID))
		}
	}
	return errs
}

// vlanFiltering reports whether a bridge the plugin creates filters VLANs:
// as in the reference, when vlan is set or vlanTrunk is present, even empty.
func (c *Config) vlanFiltering() bool {
	return c.Vlan != 0 || c.VlanTrunk != nil
}

// vlanFields names the VLAN settings in use, for messages.
func (c *Config) vlanFields() string {
	switch {
	case c.Vlan != 0 && c.VlanTrunk != nil:
		return fmt.Sprintf("vlan %d and vlanTrunk", c.Vlan)
	case c.Vlan != 0:
		return fmt.Sprintf("vlan %d", c.Vlan)
	}
	return "vlanTrunk"
}

// trunkIDs lists the VLAN ids vlanTrunk names, sorted, without duplicates.
// It expects validated entries.
func trunkIDs(trunk []VlanTrunk) []uint16 {
	var ids []uint16
	for _, t := range trunk {
		if t.MinID != nil && t.MaxID != nil {
			for id := *t.MinID; id <= *t.MaxID; id++ {
				ids = append(ids, uint16(id))
			}
		}
		if t.ID != nil {
			ids = append(ids, uint16(*t.ID))
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// vlanOp is one change to a bridge port's VLAN table, made in the bridge's
// table for the port (the "master" side of `bridge vlan`).
type vlanOp struct {
	del      bool   // remove the ids instead of adding them
	vid, end uint16 // the ids vid..end; end == vid for a single id
	pvid     bool   // untagged frames entering the port belong to vid
	untagged bool   // frames of vid leave the port without a tag
}

// command is the bridge(8) command that makes the change on port dev.
func (op vlanOp) command(dev string) string {
	var b strings.Builder
	verb := "add"
	if op.del {
		verb = "del"
	}
	fmt.Fprintf(&b, "bridge vlan %s dev %s vid %d", verb, dev, op.vid)
	if op.end != op.vid {
		fmt.Fprintf(&b, "-%d", op.end)
	}
	if op.pvid {
		b.WriteString(" pvid")
	}
	if op.untagged {
		b.WriteString(" untagged")
	}
	return b.String() + " master"
}

// portVlanPlan turns the VLAN table a new port starts with (the bridge's
// default PVID, untagged; none when defaultPVID is 0) into the one the
// config asks for, in the reference's order: unless preserveDefault, drop
// the default PVID; make vlan the PVID, untagged; add each trunk id tagged;
// and give a trunk without vlan VLAN 1 as its native (PVID, untagged) VLAN.
// Consecutive trunk ids go as one range. No VLAN setting, no change.
func portVlanPlan(vlan int, trunk []uint16, preserveDefault bool, defaultPVID uint16) []vlanOp {
	if vlan == 0 && len(trunk) == 0 {
		return nil
	}
	var ops []vlanOp
	if !preserveDefault && defaultPVID != 0 {
		ops = append(ops, vlanOp{del: true, vid: defaultPVID, end: defaultPVID})
	}
	if vlan != 0 {
		ops = append(ops, vlanOp{vid: uint16(vlan), end: uint16(vlan), pvid: true, untagged: true})
	}
	for i := 0; i < len(trunk); {
		j := i
		for j+1 < len(trunk) && trunk[j+1] == trunk[j]+1 {
			j++
		}
		ops = append(ops, vlanOp{vid: trunk[i], end: trunk[j]})
		i = j + 1
	}
	if vlan == 0 {
		ops = append(ops, vlanOp{vid: 1, end: 1, pvid: true, untagged: true})
	}
	return ops
}

// defaultPVID is the VLAN a new port of br joins untagged. A kernel that
// does not report it has no VLAN filtering, where any VLAN change fails.
func defaultPVID(br *netlink.Bridge) uint16 {
	if br.VlanDefaultPVID == nil {
		return 1 // the kernel's default
	}
	return *br.VlanDefaultPVID
}

// applyVlanPlan makes the plan's changes to port, in order.
//
// Equivalent to: bridge vlan {add|del} dev PORT vid VID[-END] [pvid] [untagged] master
func applyVlanPlan(port netlink.Link, ops []vlanOp) error {
	const self, master = false, true
	for _, op := range ops {
		var err error
		switch {
		case op.del && op.end == op.vid:
			err = netlink.BridgeVlanDel(port, op.vid, op.pvid, op.untagged, self, master)
		case op.del:
			err = netlink.BridgeVlanDelRange(port, op.vid, op.end, op.pvid, op.untagged, self, master)
		case op.end == op.vid:
			err = netlink.BridgeVlanAdd(port, op.vid, op.pvid, op.untagged, self, master)
		default:
			err = netlink.BridgeVlanAddRange(port, op.vid, op.end, op.pvid, op.untagged, self, master)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", op.command(port.Attrs().Name), err)
		}
	}
	return nil
}

// vlanKernelError marks the failure of a kernel built without bridge VLAN
// filtering, which answers every VLAN request with EOPNOTSUPP, as an
// unsupported setting (CNI code 2) rather than an internal error.
func vlanKernelError(err error) error {
	if errors.Is(err, syscall.EOPNOTSUPP) {
		return fmt.Errorf("%w: %w: the kernel lacks bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING)", ErrUnsupported, err)
	}
	return err
}
