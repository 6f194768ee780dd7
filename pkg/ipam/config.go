package ipam

import "net/netip"

// DefaultDataDir is where allocations live unless ipam.dataDir says otherwise.
const DefaultDataDir = "/var/lib/cni/networks"

// Config mirrors the host-local "ipam" JSON section. Values stay strings so
// Pool can name the JSON path and the offending value in its errors.
type Config struct {
	Type       string          `json:"type"`
	Subnet     string          `json:"subnet,omitempty"`
	RangeStart string          `json:"rangeStart,omitempty"`
	RangeEnd   string          `json:"rangeEnd,omitempty"`
	Gateway    string          `json:"gateway,omitempty"`
	Ranges     [][]RangeConfig `json:"ranges,omitempty"`
	Routes     []RouteConfig   `json:"routes,omitempty"`
	DataDir    string          `json:"dataDir,omitempty"`
	ResolvConf string          `json:"resolvConf,omitempty"`
}

// RangeConfig is one entry of ipam.ranges (also runtimeConfig.ipRanges).
type RangeConfig struct {
	Subnet     string `json:"subnet"`
	RangeStart string `json:"rangeStart,omitempty"`
	RangeEnd   string `json:"rangeEnd,omitempty"`
	Gateway    string `json:"gateway,omitempty"`
}

// RouteConfig is one entry of ipam.routes: the fields of a CNI route.
// Table and Scope are pointers because 0 is a value of theirs.
type RouteConfig struct {
	Dst      string `json:"dst"`
	GW       string `json:"gw,omitempty"`
	MTU      int    `json:"mtu,omitempty"`
	AdvMSS   int    `json:"advmss,omitempty"`
	Priority int    `json:"priority,omitempty"`
	Table    *int   `json:"table,omitempty"`
	Scope    *int   `json:"scope,omitempty"`
}

// Pool is the validated form of Config.
type Pool struct {
	Sets    []RangeSet // one address per set is handed out
	Routes  []Route
	DataDir string
	DNS     DNS // from resolvConf; zero when unset
}

// RangeSet is an ordered list of ranges of one family, tried in order.
type RangeSet []Range

// Range is an inclusive span of a subnet. Start, End and Gateway are always
// set: Gateway defaults to the subnet's first host, as in the reference.
type Range struct {
	Subnet  netip.Prefix // masked
	Start   netip.Addr
	End     netip.Addr
	Gateway netip.Addr
}

// Route is a route to program in the pod. GW is the zero Addr for "via
// the default gateway"; MTU, AdvMSS and Priority are 0 and Table and Scope
// nil when not configured, as in a CNI route.
type Route struct {
	Dst      netip.Prefix
	GW       netip.Addr
	MTU      int
	AdvMSS   int
	Priority int
	Table    *int
	Scope    *int
}

// DNS is what resolvConf holds.
type DNS struct {
	Nameservers []string
	Domain      string
	Search      []string
	Options     []string
}
