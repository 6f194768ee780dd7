package ipam

import (
	"cmp"
	"errors"
	"fmt"
)

// Pool validates c and returns its parsed form. Errors wrap ErrInvalid and
// name the JSON path and value, e.g. `ipam.ranges[0][0].rangeStart "10.0.0.300": not an IP`;
// every problem is reported at once.
func (c *Config) Pool() (*Pool, error) {
	p := c.ReleasePool()
	var errs []error
	specs := c.setSpecs()
	for _, sp := range specs {
		set, setErrs := sp.parse()
		errs = append(errs, setErrs...)
		p.Sets = append(p.Sets, set)
	}
	if len(specs) == 0 {
		errs = append(errs, invalid("ipam.ranges", "", "no address ranges configured"))
	}
	if len(errs) == 0 {
		errs = append(errs, setOverlaps(specs, p.Sets)...)
	}
	for i, rc := range c.Routes {
		rt, rErrs := parseRoute(fmt.Sprintf("ipam.routes[%d].", i), rc, p.Sets)
		errs = append(errs, rErrs...)
		p.Routes = append(p.Routes, rt)
	}
	if c.ResolvConf != "" {
		dns, err := parseResolvConf(c.ResolvConf)
		if err != nil {
			errs = append(errs, &fieldError{path: "ipam.resolvConf", value: c.ResolvConf, problem: err.Error(), cause: err})
		}
		p.DNS = dns
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

// ReleasePool is the part of the pool that freeing addresses needs: the
// data directory, without range sets. Nothing else is parsed, so a DEL or
// GC works whatever the ranges, routes or resolvConf say by then.
func (c *Config) ReleasePool() *Pool {
	return &Pool{DataDir: cmp.Or(c.DataDir, DefaultDataDir)}
}

// setSpec is one range set as configured, with the JSON paths of its parts.
type setSpec struct {
	name   string   // for messages: "ipam.ranges[1]", or "ipam.subnet" for the legacy range
	paths  []string // JSON path prefix of each range
	ranges []RangeConfig
}

// setSpecs lists the configured range sets. As in the reference, a legacy
// top-level range comes first, so it owns last_reserved_ip.0.
func (c *Config) setSpecs() []setSpec {
	var specs []setSpec
	if c.Subnet != "" || c.RangeStart != "" || c.RangeEnd != "" || c.Gateway != "" {
		legacy := RangeConfig{Subnet: c.Subnet, RangeStart: c.RangeStart, RangeEnd: c.RangeEnd, Gateway: c.Gateway}
		specs = append(specs, setSpec{name: "ipam.subnet", paths: []string{"ipam."}, ranges: []RangeConfig{legacy}})
	}
	for i, rs := range c.Ranges {
		sp := setSpec{name: fmt.Sprintf("ipam.ranges[%d]", i), ranges: rs}
		for j := range rs {
			sp.paths = append(sp.paths, fmt.Sprintf("ipam.ranges[%d][%d].", i, j))
		}
		specs = append(specs, sp)
	}
	return specs
}

// parse validates each range of the set, then that they share one family
// and do not overlap.
func (sp setSpec) parse() (RangeSet, []error) {
	if len(sp.ranges) == 0 {
		return nil, []error{invalid(sp.name, "", "empty range set")}
	}
	var set RangeSet
	var errs []error
	for j, rc := range sp.ranges {
		r, rErrs := parseRange(sp.paths[j], rc)
		errs = append(errs, rErrs...)
		set = append(set, r)
	}
	if len(errs) > 0 {
		return set, errs
	}
	for j, r := range set {
		if r.Subnet.Addr().BitLen() != set[0].Subnet.Addr().BitLen() {
			errs = append(errs, invalid(sp.paths[j]+"subnet", sp.ranges[j].Subnet,
				"address family differs from %ssubnet %s", sp.paths[0], set[0].Subnet))
			continue
		}
		for k := range j {
			if r.overlaps(set[k]) {
				errs = append(errs, invalid(sp.paths[j]+"subnet", sp.ranges[j].Subnet,
					"range %s overlaps %s range %s", r, sp.paths[k][:len(sp.paths[k])-1], set[k]))
			}
		}
	}
	return set, errs
}

// setOverlaps reports range sets sharing an address with an earlier set.
func setOverlaps(specs []setSpec, sets []RangeSet) []error {
	var errs []error
	for i, s := range sets {
		for k := range i {
			if setsOverlap(s, sets[k]) {
				errs = append(errs, invalid(specs[i].name, "", "overlaps %s", specs[k].name))
			}
		}
	}
	return errs
}

func setsOverlap(a, b RangeSet) bool {
	for _, r := range a {
		for _, o := range b {
			if r.overlaps(o) {
				return true
			}
		}
	}
	return false
}
