package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// template is an operator's conflist, from the ConfigMap: the agent fills
// in what it owns and keeps the rest. Its objects are kept as decoded
// (json.Number for numbers) so that a field the agent does not know reaches
// the plugin as written.
type template struct {
	top     map[string]any   // the conflist's own fields but plugins
	plugins []map[string]any // in the order given; plugins[0] is nodebridge
}

// templateBools are the operator's switches of the nodebridge plugin and
// their defaults, today's conflist's.
func templateBools() map[string]bool {
	return map[string]bool{"isDefaultGateway": true, "ipMasq": true, "hairpinMode": true}
}

// parseTemplate decodes and checks a conflist template, reporting every
// problem at once; the messages name the JSON path.
func parseTemplate(data []byte) (*template, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var top map[string]any
	if err := dec.Decode(&top); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if dec.More() {
		return nil, errors.New("not a JSON object: data after the object")
	}
	list, ok := top["plugins"].([]any)
	if !ok {
		return nil, fmt.Errorf("plugins: %s, not a list", kindOf(top["plugins"]))
	}
	delete(top, "plugins")
	t := &template{top: top}
	var errs []error
	for i, p := range list {
		obj, ok := p.(map[string]any)
		if !ok {
			errs = append(errs, fmt.Errorf("plugins[%d]: %s, not an object", i, kindOf(p)))
			continue
		}
		errs = append(errs, checkPlugin(i, obj))
		t.plugins = append(t.plugins, obj)
	}
	if errors.Join(errs...) == nil && (len(t.plugins) == 0 || t.plugins[0]["type"] != "nodebridge") {
		errs = append(errs, errors.New(`plugins[0].type: not "nodebridge": the nodebridge plugin must come first, once`))
	}
	return t, errors.Join(errs...)
}

// checkPlugin checks plugins[i]: a type naming a binary of the CNI bin
// dir (no path), nodebridge once and first, and the types of the fields
// of nodebridge an operator sets.
func checkPlugin(i int, p map[string]any) error {
	typ, ok := p["type"].(string)
	switch {
	case !ok:
		return fmt.Errorf("plugins[%d].type: %s, not a string", i, kindOf(p["type"]))
	case typ == "" || typ == "." || typ == ".." || strings.ContainsAny(typ, `/\`):
		return fmt.Errorf("plugins[%d].type %q: not a plugin name (a binary of the CNI bin dir, no path)", i, typ)
	case typ == "nodebridge" && i > 0:
		return fmt.Errorf(`plugins[%d].type "nodebridge": the nodebridge plugin must come first, once`, i)
	case typ != "nodebridge":
		return nil
	}
	var errs []error
	for key := range templateBools() {
		if v, set := p[key]; set {
			if _, ok := v.(bool); !ok {
				errs = append(errs, fmt.Errorf("plugins[%d].%s: %s, not true or false", i, key, kindOf(v)))
			}
		}
	}
	if v, set := p["mtu"]; set {
		if _, err := mtuOf(v); err != nil {
			errs = append(errs, fmt.Errorf("plugins[%d].mtu: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// mtuOf is a template's mtu: an integer from 68 (the least IPv4 allows)
// to 65535.
func mtuOf(v any) (int, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("%s, not a number", kindOf(v))
	}
	i, err := n.Int64()
	if err != nil || i < 68 || i > 65535 {
		return 0, fmt.Errorf("%s: not an integer from 68 to 65535", n)
	}
	return int(i), nil
}

// kindOf names the JSON kind of a decoded value, for messages.
func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "missing or null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "a list"
	}
	return "an object"
}

// render fills t in for the node and encodes it. The agent owns the
// conflist's name and CNI versions and, in the nodebridge plugin, the
// bridge, gateway, ipMasqBackend, non-masquerade CIDRs and the whole ipam
// section: these always come from the flags and the cluster. The template
// keeps mtu (else the underlay's), ipMasq, hairpinMode, isDefaultGateway,
// any other field, and the chained plugins in its order. Keys come out
// sorted, so the same inputs give the same bytes.
func (t *template) render(c *Config, d *desired, underlayMTU int) ([]byte, error) {
	nb := make(map[string]any, len(t.plugins[0])+8)
	for k, v := range t.plugins[0] {
		nb[k] = v
	}
	for k, def := range templateBools() {
		if _, set := nb[k]; !set {
			nb[k] = def
		}
	}
	if _, set := nb["mtu"]; !set && underlayMTU > 0 {
		nb["mtu"] = underlayMTU
	}
	owned := ownedBridge(c, d)
	for k, v := range owned {
		nb[k] = v
	}
	if c.IPMasqBackend == "" {
		delete(nb, "ipMasqBackend")
	}
	out := make(map[string]any, len(t.top)+4)
	for k, v := range t.top {
		out[k] = v
	}
	out["cniVersion"], out["cniVersions"], out["name"] = cniVersion, strings.Fields(cniVersions), c.NetworkName
	out["plugins"] = append([]any{nb}, anySlice(t.plugins[1:])...)
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode conflist %s: %w", c.NetworkName, err)
	}
	return append(b, '\n'), nil
}

// ownedBridge is what the agent sets in the nodebridge plugin, whatever
// the template says.
func ownedBridge(c *Config, d *desired) map[string]any {
	ipam := ipamConf{Type: "host-local", DataDir: c.IPAMDataDir}
	for _, p := range d.podCIDRs {
		ipam.Ranges = append(ipam.Ranges, []subnetConfig{{Subnet: p}})
	}
	return map[string]any{
		"type": "nodebridge", "bridge": c.Bridge, "isGateway": true,
		"ipMasqBackend": c.IPMasqBackend, "nonMasqueradeCIDRs": d.clusterCIDRs, "ipam": ipam,
	}
}

func anySlice(ps []map[string]any) []any {
	out := make([]any, len(ps))
	for i, p := range ps {
		out[i] = p
	}
	return out
}
