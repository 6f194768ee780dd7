package bridge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/nodebridge/nodebridge/pkg/ipam"
)

// decode unmarshals stdin; its errors name the field and value when
// encoding/json tells them.
func decode(stdin []byte) (*Config, error) {
	switch {
	case len(stdin) > MaxConfigSize:
		return nil, problemf(ErrDecode, "network config: %d bytes, more than %d", len(stdin), MaxConfigSize)
	case len(bytes.TrimSpace(stdin)) == 0:
		return nil, problemf(ErrDecode, "network config: empty")
	}
	var c Config
	if c.decodeFields(stdin) {
		return &c, nil
	}
	c = Config{}
	if err := json.Unmarshal(stdin, &c); err != nil {
		return nil, problemf(ErrDecode, "network config: %s", describeJSONError(stdin, err))
	}
	return &c, nil
}

// jsonField is one top-level key of the config and the field it decodes
// into.
type jsonField struct {
	name string
	dst  any
}

// jsonFields lists Config's JSON keys, as its tags name them, with the
// field each decodes into (a test holds the two to each other).
func (c *Config) jsonFields() []jsonField {
	return []jsonField{
		{"cniVersion", &c.CNIVersion}, {"name", &c.Name}, {"type", &c.Type},
		{"bridge", &c.Bridge}, {"isGateway", &c.IsGateway}, {"isDefaultGateway", &c.IsDefaultGateway},
		{"forceAddress", &c.ForceAddress}, {"ipMasq", &c.IPMasq}, {"ipMasqBackend", &c.IPMasqBackend},
		{"nonMasqueradeCIDRs", &c.NonMasqueradeCIDRs}, {"mtu", &c.MTU}, {"hairpinMode", &c.HairpinMode},
		{"promiscMode", &c.PromiscMode}, {"vlan", &c.Vlan}, {"vlanTrunk", &c.VlanTrunk},
		{"preserveDefaultVlan", &c.PreserveDefaultVlan}, {"macspoofchk", &c.MacSpoofChk},
		{"enabledad", &c.EnableDad}, {"disableContainerInterface", &c.DisableContainerInterface},
		{"portIsolation", &c.PortIsolation}, {"ipam", &c.IPAM}, {"dns", &c.DNS}, {"args", &c.Args},
		{"runtimeConfig", &c.RuntimeConfig}, {"prevResult", &c.RawPrevResult},
		{"cni.dev/valid-attachments", &c.ValidAttachments},
	}
}

// decodeFields decodes a config object key by key, each value into its
// field with encoding/json, and reports whether it could. The result is
// json.Unmarshal's: keys match case-insensitively, in order, the last of
// a repeated key wins, unknown keys are skipped. It is faster the first
// time, which is the only time in a process: json.Unmarshal into Config
// first builds its table of Config's 26 fields, about 0.05 ms here, and
// into ipam.Config another 0.06 ms, while a value decoded into a field
// builds none; the ipam object is decoded key by key the same way.
// Anything else (not an object, a syntax or type error, trailing data, a
// key outside ASCII, whose case folding this does not copy) returns false,
// c partly set, and decode leaves it to json.Unmarshal, whose error names
// the field.
func (c *Config) decodeFields(stdin []byte) bool {
	return decodeObject(stdin, c.jsonFields())
}

// decodeObject decodes the JSON object data key by key into fields, as
// decodeFields describes.
func decodeObject(data []byte, fields []jsonField) bool {
	d := json.NewDecoder(bytes.NewReader(data))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return false
	}
	for d.More() {
		t, err := d.Token()
		key, isKey := t.(string)
		if err != nil || !isKey || !isASCII(key) {
			return false
		}
		var raw json.RawMessage
		if err := d.Decode(&raw); err != nil {
			return false
		}
		for _, f := range fields {
			if strings.EqualFold(f.name, key) {
				if !decodeValue(raw, f.dst) {
					return false
				}
				break
			}
		}
	}
	if _, err := d.Token(); err != nil { // the closing brace
		return false
	}
	_, err := d.Token()
	return err == io.EOF
}

// decodeValue decodes raw into dst as json.Unmarshal would: the ipam
// object key by key into the ipam.Config dst points to (a new one when
// nil, so that a repeated key merges into the first, as json.Unmarshal
// does), anything else with json.Unmarshal.
func decodeValue(raw json.RawMessage, dst any) bool {
	p, ok := dst.(**ipam.Config)
	if !ok || !bytes.HasPrefix(raw, []byte("{")) {
		return json.Unmarshal(raw, dst) == nil
	}
	if *p == nil {
		*p = new(ipam.Config)
	}
	return decodeObject(raw, ipamJSONFields(*p))
}

// ipamJSONFields lists ipam.Config's JSON keys, as its tags name them,
// with the field each decodes into (a test holds the two to each other).
func ipamJSONFields(c *ipam.Config) []jsonField {
	return []jsonField{
		{"type", &c.Type}, {"subnet", &c.Subnet}, {"rangeStart", &c.RangeStart}, {"rangeEnd", &c.RangeEnd},
		{"gateway", &c.Gateway}, {"ranges", &c.Ranges}, {"routes", &c.Routes}, {"dataDir", &c.DataDir},
		{"resolvConf", &c.ResolvConf},
	}
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// describeJSONError rewords encoding/json's errors, which name Go types
// ("Go struct field Config.mtu of type int"), in the operator's JSON terms.
func describeJSONError(stdin []byte, err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("offset %d: %v", se.Offset, se)
	}
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		return err.Error()
	}
	have, _, _ := strings.Cut(te.Value, " ") // "number 1.5" carries the literal too; take it from stdin
	if lit := literalBefore(stdin, te.Offset); lit != "" {
		have += " " + lit
	}
	want := jsonKind(te.Type)
	if strings.HasPrefix(have, want) {
		want = te.Type.String() // right kind, wrong range: 1.5 or 1e30 for an int
	}
	if te.Field == "" {
		return fmt.Sprintf("cannot use %s as %s", have, want)
	}
	return fmt.Sprintf("field %s: cannot use %s as %s", te.Field, have, want)
}

// literalBefore returns the JSON scalar ending at off, where encoding/json
// reports a type error, so the message can quote it; "" for objects, arrays
// and anything too long to quote.
func literalBefore(stdin []byte, off int64) string {
	if off <= 0 || off > int64(len(stdin)) {
		return ""
	}
	s := stdin[:off]
	start := len(s)
	if s[len(s)-1] == '"' {
		start = bytes.LastIndexByte(s[:len(s)-1], '"')
		for start > 0 && escaped(s, start) {
			start = bytes.LastIndexByte(s[:start], '"')
		}
	} else {
		for start > 0 && strings.IndexByte("+-.0123456789Eaeflnrstu", s[start-1]) >= 0 {
			start--
		}
	}
	if start < 0 || len(s)-start > 64 {
		return ""
	}
	return string(s[start:])
}

// escaped reports whether s[i] follows an odd number of backslashes.
func escaped(s []byte, i int) bool {
	n := 0
	for i-n > 0 && s[i-n-1] == '\\' {
		n++
	}
	return n%2 == 1
}

// jsonKind names the JSON kind that decodes into t.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "bool"
	case reflect.String:
		return "string"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	}
	return "number"
}
