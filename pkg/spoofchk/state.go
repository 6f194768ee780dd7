package spoofchk

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"slices"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/nodebridge/nodebridge/pkg/rules"
)

// state is what one read shows of table bridge nodebridge.
type state struct {
	table   bool
	chain   *nftables.Chain // nil when missing
	rules   []*nftables.Rule
	sets    map[string]*nftables.Set
	ports   []string                      // interface names in spoofchk_ports
	allowed map[string][]net.HardwareAddr // MACs in spoofchk_allowed by interface name
}

// readSpoof reads the table: its chain's rules, its sets and their elements.
// A missing table, or a kernel without nftables, reads as empty.
func readTable(c *nftables.Conn, o objects) (state, error) {
	st := state{sets: map[string]*nftables.Set{}, allowed: map[string][]net.HardwareAddr{}}
	_, err := c.ListTableOfFamily(tableName, nftables.TableFamilyBridge)
	switch {
	case errors.Is(err, unix.ENOENT), rules.NFTUnavailable(err):
		return st, nil
	case err != nil:
		return st, fmt.Errorf("read nftables table bridge %s: %w", tableName, err)
	}
	st.table = true
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyBridge)
	if err != nil {
		return st, fmt.Errorf("list nftables chains of family bridge: %w", err)
	}
	for _, ch := range chains {
		if ch.Table != nil && ch.Table.Name == tableName && ch.Name == spoofChainName {
			st.chain = ch
		}
	}
	if st.chain != nil {
		if st.rules, err = c.GetRules(o.table, st.chain); err != nil {
			return st, fmt.Errorf("list rules of nftables chain bridge %s %s: %w", tableName, spoofChainName, err)
		}
	}
	return st, st.readSets(c, o)
}

// readSets reads the table's sets, and the elements of ours that have the
// type we give them.
func (st *state) readSets(c *nftables.Conn, o objects) error {
	sets, err := c.GetSets(o.table)
	if err != nil {
		return fmt.Errorf("list sets of nftables table bridge %s: %w", tableName, err)
	}
	for _, s := range sets {
		st.sets[s.Name] = s
	}
	for _, want := range []*nftables.Set{o.ports, o.allowed} {
		if setTypeDiffers(st.sets[want.Name], want) != nil {
			continue
		}
		elems, err := c.GetSetElements(st.sets[want.Name])
		if err != nil {
			return fmt.Errorf("list elements of nftables set bridge %s %s: %w", tableName, want.Name, err)
		}
		for _, e := range elems {
			st.addElement(want.Name, e.Key)
		}
	}
	return nil
}

// addElement records an element's key; a key of another shape, which we
// never write, is left out.
func (st *state) addElement(set string, key []byte) {
	if set == spoofPortsSet {
		if name, ok := parsePortKey(key); ok {
			st.ports = append(st.ports, name)
		}
		return
	}
	if name, mac, ok := parseAllowedKey(key); ok {
		st.allowed[name] = append(st.allowed[name], mac)
	}
}

// setTypeDiffers reports a set that is missing or keyed by another type.
func setTypeDiffers(got, want *nftables.Set) error {
	where := fmt.Sprintf("nftables set bridge %s %s: ", tableName, want.Name)
	switch {
	case got == nil:
		return finding(where + "missing")
	case got.KeyType.Name != want.KeyType.Name || got.KeyType.Bytes != want.KeyType.Bytes:
		return finding(fmt.Sprintf("%stype %s (%d bytes), want %s", where, got.KeyType.Name, got.KeyType.Bytes, want.KeyType.Name))
	}
	return nil
}

// structureDiffs lists, as ErrMissing findings, how the table, sets, chain
// and rule depart from o.
func (st state) structureDiffs(o objects) []error {
	if !st.table {
		return []error{finding(fmt.Sprintf("nftables table bridge %s: missing", tableName))}
	}
	var errs []error
	for _, s := range []*nftables.Set{o.ports, o.allowed} {
		if err := setTypeDiffers(st.sets[s.Name], s); err != nil {
			errs = append(errs, err)
		}
	}
	where := fmt.Sprintf("nftables chain bridge %s %s: ", tableName, spoofChainName)
	if st.chain == nil {
		return append(errs, finding(where+"missing"))
	}
	if have, want := rules.ChainHeader(st.chain), rules.ChainHeader(o.chain); have != want {
		errs = append(errs, finding(where+have+", want "+want))
	}
	return append(errs, st.ruleDiffs(o, where)...)
}

// ruleDiffs compares the chain's rules with the one rule it must hold.
func (st state) ruleDiffs(o objects, where string) []error {
	switch {
	case len(st.rules) == 0:
		return []error{finding(fmt.Sprintf("%smissing rule %q", where, o.rule.text))}
	case len(st.rules) > 1:
		return []error{finding(fmt.Sprintf("%s%d rules, want only %q", where, len(st.rules), o.rule.text))}
	case !bytes.Equal(st.rules[0].UserData, ruleComment()) || !rules.SameExprs(nftables.TableFamilyBridge, st.rules[0].Exprs, o.rule.exprs):
		return []error{finding(fmt.Sprintf("%srule (handle %d) differs from %q", where, st.rules[0].Handle, o.rule.text))}
	}
	return nil
}

// portDiffs lists, as ErrMissing findings naming the port and MAC, how the
// elements of p depart from p: either element missing, or other MACs
// allowed through the port.
func (st state) portDiffs(p Port) []error {
	var errs []error
	if !slices.Contains(st.ports, p.IfName) {
		errs = append(errs, finding(fmt.Sprintf("port %s (MAC %s): not in nftables set bridge %s %s", p.IfName, p.MAC, tableName, spoofPortsSet)))
	}
	if !st.allows(p) {
		errs = append(errs, finding(fmt.Sprintf("port %s MAC %s: not in nftables set bridge %s %s", p.IfName, p.MAC, tableName, spoofAllowedSet)))
	}
	for _, m := range st.stale(p) {
		errs = append(errs, finding(fmt.Sprintf("port %s (MAC %s): nftables set bridge %s %s also allows MAC %s", p.IfName, p.MAC, tableName, spoofAllowedSet, m)))
	}
	return errs
}

// allows reports whether spoofchk_allowed lets p.MAC in through p's port.
func (st state) allows(p Port) bool {
	return slices.ContainsFunc(st.allowed[p.IfName], func(m net.HardwareAddr) bool { return bytes.Equal(m, p.MAC) })
}

// stale lists the MACs allowed through p's port other than p's own.
func (st state) stale(p Port) []net.HardwareAddr {
	var macs []net.HardwareAddr
	for _, m := range st.allowed[p.IfName] {
		if !bytes.Equal(m, p.MAC) {
			macs = append(macs, m)
		}
	}
	return macs
}
