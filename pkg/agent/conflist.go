package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// conflist mirrors the CNI network configuration list the agent writes.
type conflist struct {
	CNIVersion  string   `json:"cniVersion"`
	CNIVersions []string `json:"cniVersions"`
	Name        string   `json:"name"`
	Plugins     []any    `json:"plugins"`
}

// The conflist's spec versions. cniVersion stays 1.0.0 because runtimes on
// libcni before 1.2 (containerd 1.6 and 1.7 among them) read only it and
// reject 1.1.0 results; libcni 1.2 and later take the highest of cniVersions
// they support, so they get 1.1.0 (STATUS and GC).
const (
	cniVersion  = "1.0.0"
	cniVersions = "1.0.0 1.1.0"
)

// bridgeConf is the nodebridge plugin object of the conflist.
type bridgeConf struct {
	Type               string         `json:"type"`
	Bridge             string         `json:"bridge"`
	IsGateway          bool           `json:"isGateway"`
	IsDefaultGateway   bool           `json:"isDefaultGateway"`
	IPMasq             bool           `json:"ipMasq"`
	IPMasqBackend      string         `json:"ipMasqBackend,omitempty"`
	NonMasqueradeCIDRs []netip.Prefix `json:"nonMasqueradeCIDRs"`
	MTU                int            `json:"mtu,omitempty"`
	HairpinMode        bool           `json:"hairpinMode"`
	IPAM               ipamConf       `json:"ipam"`
}

// ipamConf is the host-local IPAM section: one range set per podCIDR.
type ipamConf struct {
	Type    string           `json:"type"`
	DataDir string           `json:"dataDir"`
	Ranges  [][]subnetConfig `json:"ranges"`
}

// subnetConfig is one range of a range set.
type subnetConfig struct {
	Subnet netip.Prefix `json:"subnet"`
}

// portmapConf chains the reference portmap plugin so hostPorts work.
type portmapConf struct {
	Type         string          `json:"type"`
	Capabilities map[string]bool `json:"capabilities"`
	SNAT         bool            `json:"snat"`
}

// renderConflist returns the conflist bytes for the node; the same inputs
// always give the same bytes, so an unchanged file is never rewritten.
func renderConflist(c *Config, d *desired, mtu int) ([]byte, error) {
	b := bridgeConf{
		Type: "nodebridge", Bridge: c.Bridge, IsGateway: true, IsDefaultGateway: true,
		IPMasq: true, IPMasqBackend: c.IPMasqBackend, NonMasqueradeCIDRs: d.clusterCIDRs,
		MTU: mtu, HairpinMode: true,
		IPAM: ipamConf{Type: "host-local", DataDir: c.IPAMDataDir},
	}
	for _, p := range d.podCIDRs {
		b.IPAM.Ranges = append(b.IPAM.Ranges, []subnetConfig{{Subnet: p}})
	}
	l := conflist{CNIVersion: cniVersion, CNIVersions: strings.Fields(cniVersions), Name: c.NetworkName, Plugins: []any{
		b,
		portmapConf{Type: "portmap", Capabilities: map[string]bool{"portMappings": true}, SNAT: true},
	}}
	out, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode conflist %s: %w", c.NetworkName, err)
	}
	return append(out, '\n'), nil
}

// writeIfChanged writes data to path unless it already holds exactly data.
// The temp file starts with a dot and ends in neither .conf nor .conflist, so
// a runtime watching the directory never loads a half-written config.
// Equivalent to: cat > DIR/.NAME.tmp && mv DIR/.NAME.tmp DIR/NAME
func writeIfChanged(path string, data []byte) (bool, error) {
	old, err := os.ReadFile(path)
	if err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("create conf dir %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return false, fmt.Errorf("create temp file for %s: %w", path, err)
	}
	tmp := f.Name()
	err = errors.Join(writeSync(f, data), os.Chmod(tmp, 0o644))
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp) // best effort: the write error is what matters
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	return true, nil
}

// writeSync writes data, flushes it to disk and closes f.
func writeSync(f *os.File, data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}
