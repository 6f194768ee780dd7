package bridge

import (
	"errors"
	"fmt"
	"slices"

	"github.com/nodebridge/nodebridge/pkg/ipam"
)

// Mode is how much of its input a verb depends on, and so validates. What
// names the network's state (the network name, the bridge, CNI_CONTAINERID,
// CNI_IFNAME, a delegated IPAM plugin, cni.dev/valid-attachments) is checked
// in every mode, and the dataDir is read in every mode that has a store;
// undecodable JSON is always ErrDecode.
type Mode int

const (
	// ModeAdd validates everything: ADD.
	ModeAdd Mode = iota
	// ModeCheck is ModeAdd and a prevResult that CHECK can compare the pod
	// with, since CHECK expects what an ADD of the same input would make.
	ModeCheck
	// ModeStatus validates the network's config as an ADD reads it (ranges,
	// routes, resolvConf, options), since STATUS says whether an ADD could
	// succeed: an invalid range is reported with the ADD's code 7. What
	// belongs to one attachment (CNI_ARGS, args.cni, runtimeConfig's ips and
	// mac) is not read.
	ModeStatus
	// ModeRelease is DEL and GC: they free by container ID and interface and
	// delete by names derived from them, so nothing that only shapes an ADD
	// is read. resolvConf, requested addresses and MACs, the ranges and
	// routes, the options and nonMasqueradeCIDRs may have changed or broken
	// since the ADD: a DEL must still clean up, as host-local's does, or the
	// sandbox could never be removed. An ipMasqBackend no longer valid picks
	// the host's backend, as an empty one does.
	ModeRelease
)

// Parse is ParseFor(ModeAdd, stdin, p): for ADD.
func Parse(stdin []byte, p Pod) (*Config, error) {
	return ParseFor(ModeAdd, stdin, p)
}

// ParseFor is Decode then Resolve: it decodes stdin, applies defaults and
// validates at once what the verbs of mode read.
func ParseFor(m Mode, stdin []byte, p Pod) (*Config, error) {
	c, err := Decode(stdin)
	if err != nil {
		return nil, err
	}
	if err := c.Resolve(m, p); err != nil {
		return nil, err
	}
	return c, nil
}

// Decode unmarshals stdin into a Config with its defaults applied and
// nothing validated: enough to read cniVersion before anything else.
// Undecodable JSON is ErrDecode.
func Decode(stdin []byte) (*Config, error) {
	c, err := decode(stdin)
	if err != nil {
		return nil, err
	}
	c.Raw = stdin
	c.setDefaults()
	return c, nil
}

// Resolve validates at once what the verbs of mode read (the config, the
// pod's environment and CNI_ARGS) and fills what they derive from it.
// Each reported problem wraps the sentinel cmd maps to a CNI code
// (ErrInvalid, ErrEnv, or ipam.ErrInvalid for the ipam section).
func (c *Config) Resolve(m Mode, p Pod) error {
	errs := append(p.validate(), c.validateNames()...)
	switch m {
	case ModeRelease:
		c.resolveRelease()
	case ModeStatus:
		errs = append(errs, c.validateOptions()...)
		errs = append(errs, c.resolve(envArgs{}, false)...)
	default:
		env, envErr := parseEnvArgs(p.Args)
		errs = append(errs, envErr)
		errs = append(errs, c.validateOptions()...)
		errs = append(errs, c.resolve(env, true)...)
		if m == ModeCheck {
			errs = append(errs, c.checkPrevResult()...)
		}
	}
	return errors.Join(errs...)
}

// resolve fills the fields Parse derives: NonMasquerade; the addresser,
// for host-local with its pool and, for an attachment, the requested
// addresses; the MAC for an attachment.
func (c *Config) resolve(env envArgs, attachment bool) []error {
	var errs []error
	if attachment {
		errs = append(errs, c.resolveMAC(env.MAC))
	}
	c.NonMasquerade, _ = c.parseNonMasquerade() // validateOptions reports its problems
	if !c.hostLocal() {
		c.addresser = c.otherAddresser()
		return errs
	}
	if attachment {
		errs = append(errs, c.resolveRequested(env.IPs)...)
	}
	pool, err := c.pool()
	errs = append(errs, err)
	if pool != nil {
		errs = append(errs, pool.CheckRequested(c.Requested)) // refused here, before the store exists
	}
	c.addresser = &hostLocal{pool: pool}
	return errs
}

// resolveRelease fills what DEL and GC use (see ModeRelease): for
// host-local, a pool with the store's directory and no ranges.
// NonMasquerade stays empty: deleting a network's rules needs only its name.
func (c *Config) resolveRelease() {
	if c.hostLocal() {
		c.addresser = &hostLocal{pool: c.IPAM.ReleasePool()}
		return
	}
	c.addresser = c.otherAddresser()
}

// hostLocal reports whether the network's addresses come from host-local,
// which nodebridge runs in process.
func (c *Config) hostLocal() bool {
	return c.IPAM != nil && c.IPAM.Type == hostLocalType
}

// otherAddresser is the addresser of a network without host-local: the
// plugin ipam.type names, or none.
func (c *Config) otherAddresser() addresser {
	if c.layer3() {
		return delegated{}
	}
	return noIPAM{}
}

// pool builds the host-local pool. As in host-local, runtimeConfig.ipRanges
// go first, then the legacy single range, then ipam.ranges: the order also
// numbers the last_reserved_ip.<set> files, so it must match.
func (c *Config) pool() (*ipam.Pool, error) {
	rt := c.RuntimeConfig.IPRanges
	if len(rt) == 0 {
		return c.IPAM.Pool()
	}
	static := *c.IPAM
	static.Subnet, static.RangeStart, static.RangeEnd, static.Gateway = "", "", "", ""
	if legacy := (ipam.RangeConfig{Subnet: c.IPAM.Subnet, RangeStart: c.IPAM.RangeStart,
		RangeEnd: c.IPAM.RangeEnd, Gateway: c.IPAM.Gateway}); legacy != (ipam.RangeConfig{}) {
		static.Ranges = slices.Concat([][]ipam.RangeConfig{{legacy}}, c.IPAM.Ranges)
	}
	// Check each part alone first: merged, the ranges would be renumbered and
	// an error would name the wrong path.
	var errs []error
	if _, err := (&ipam.Config{Type: hostLocalType, Ranges: rt}).Pool(); err != nil {
		errs = append(errs, fmt.Errorf("runtimeConfig.ipRanges: %w", err))
	}
	if len(static.Ranges) > 0 {
		if _, err := c.IPAM.Pool(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	static.Ranges = slices.Concat(rt, static.Ranges)
	p, err := static.Pool()
	if err != nil {
		return nil, fmt.Errorf("runtimeConfig.ipRanges prepended to ipam ranges: %w", err)
	}
	return p, nil
}
