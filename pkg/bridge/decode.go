package bridge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

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
// decodeFields describes. It scans the object itself: a key is a plain
// string (no escapes), and a value a plain string, true, false or an
// integer goes straight into a string, bool or int field, with no
// encoding/json at all; any other value of a known key goes through
// json.Unmarshal, and of an unknown key through json.Valid, so what is
// accepted is exactly what json.Unmarshal accepts.
func decodeObject(data []byte, fields []jsonField) bool {
	sc := scanner{b: data}
	return sc.members('{', '}', func() bool {
		key, ok := sc.plainString()
		if !ok || !isASCII(key) || !sc.expect(':') {
			return false
		}
		raw, ok := sc.value()
		if !ok {
			return false
		}
		f := fieldFor(fields, key)
		return f == nil && json.Valid(raw) || f != nil && decodeValue(raw, f.dst)
	})
}

// members scans the whole of sc as one JSON object or array, from open to
// its close, calling member to scan each member in turn: false when a
// member fails or the punctuation around them is not JSON's.
func (sc *scanner) members(open, close byte, member func() bool) bool {
	if !sc.expect(open) {
		return false
	}
	if sc.skipSpace(); sc.peek() == close {
		sc.i++
		return sc.atEnd()
	}
	for {
		if !member() {
			return false
		}
		switch sc.skipSpace(); sc.peek() {
		case ',':
			sc.i++
		case close:
			sc.i++
			return sc.atEnd()
		default:
			return false
		}
	}
}

// fieldFor is the field key names, matched as encoding/json matches.
func fieldFor(fields []jsonField, key string) *jsonField {
	for i := range fields {
		if strings.EqualFold(fields[i].name, key) {
			return &fields[i]
		}
	}
	return nil
}

// decodeValue decodes raw into dst as json.Unmarshal would: a plain
// string, bool or integer straight into a field of that type, the ipam
// object key by key into the ipam.Config dst points to (a new one when
// nil, so that a repeated key merges into the first, as json.Unmarshal
// does), anything else with json.Unmarshal.
func decodeValue(raw []byte, dst any) bool {
	switch p := dst.(type) {
	case *string:
		if v, ok := plainString(raw); ok {
			*p = v
			return true
		}
	case *bool:
		if v := string(raw); v == "true" || v == "false" {
			*p = v == "true"
			return true
		}
	case *int:
		if v, ok := plainInt(raw); ok {
			*p = v
			return true
		}
	case **int:
		if v, ok := plainInt(raw); ok {
			if *p == nil {
				*p = new(int)
			}
			**p = v
			return true
		}
	case **ipam.Config:
		if raw[0] == '{' {
			if *p == nil {
				*p = new(ipam.Config)
			}
			return decodeObject(raw, ipamJSONFields(*p))
		}
	case *[][]ipam.RangeConfig:
		// Only into a nil slice: json.Unmarshal decodes a repeated key's
		// array into the elements already there.
		if *p == nil && raw[0] == '[' {
			return decodeArray(raw, p, func(elem []byte, set *[]ipam.RangeConfig) bool {
				return elem[0] == '[' && decodeArray(elem, set, func(elem []byte, r *ipam.RangeConfig) bool {
					return elem[0] == '{' && decodeObject(elem, rangeJSONFields(r))
				})
			})
		}
	case *[]ipam.RouteConfig:
		if *p == nil && raw[0] == '[' {
			return decodeArray(raw, p, func(elem []byte, r *ipam.RouteConfig) bool {
				return elem[0] == '{' && decodeObject(elem, routeJSONFields(r))
			})
		}
	}
	return json.Unmarshal(raw, dst) == nil
}

// decodeArray decodes the JSON array raw into the nil slice *dst, each
// element into a zero T with decodeElem, as json.Unmarshal does: an empty
// array makes an empty slice, not nil.
func decodeArray[T any](raw []byte, dst *[]T, decodeElem func([]byte, *T) bool) bool {
	sc := scanner{b: raw}
	out := []T{}
	ok := sc.members('[', ']', func() bool {
		elem, ok := sc.value()
		var v T
		if !ok || !decodeElem(elem, &v) {
			return false
		}
		out = append(out, v)
		return true
	})
	if ok {
		*dst = out
	}
	return ok
}

// plainString is the JSON string raw when it holds no escape, control
// character or invalid UTF-8: then its bytes are its value.
func plainString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	in := raw[1 : len(raw)-1]
	for _, c := range in {
		if c < 0x20 || c == '"' || c == '\\' {
			return "", false
		}
	}
	if !utf8.Valid(in) {
		return "", false
	}
	return string(in), true
}

// plainInt is the JSON integer raw (no fraction or exponent) when it fits.
func plainInt(raw []byte) (int, bool) {
	digits := raw
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 1 && digits[0] == '0' {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	v, err := strconv.Atoi(string(raw))
	return v, err == nil
}

// scanner walks a JSON text far enough to cut it into an object's keys and
// raw values; the values themselves are checked where they are decoded.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) skipSpace() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
}

// peek is the next byte, 0 at the end.
func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// expect consumes c after any whitespace.
func (s *scanner) expect(c byte) bool {
	if s.skipSpace(); s.peek() != c {
		return false
	}
	s.i++
	return true
}

// atEnd reports whether only whitespace is left.
func (s *scanner) atEnd() bool {
	s.skipSpace()
	return s.i == len(s.b)
}

// plainString consumes a string with no escape after any whitespace.
func (s *scanner) plainString() (string, bool) {
	if s.skipSpace(); s.peek() != '"' {
		return "", false
	}
	end := bytes.IndexByte(s.b[s.i+1:], '"')
	if end < 0 {
		return "", false
	}
	v, ok := plainString(s.b[s.i : s.i+end+2])
	s.i += end + 2
	return v, ok
}

// value consumes one value after any whitespace and returns its bytes: a
// string to its closing quote, an object or array to the bracket that
// closes it, anything else up to the next delimiter.
func (s *scanner) value() ([]byte, bool) {
	s.skipSpace()
	start, depth := s.i, 0
	for ; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; c {
		case '"':
			if !s.skipString() {
				return nil, false
			}
			if depth == 0 {
				s.i++
				return s.b[start:s.i], true
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return s.b[start:s.i], s.i > start
			}
			if depth--; depth == 0 {
				s.i++
				return s.b[start:s.i], true
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return s.b[start:s.i], s.i > start
			}
		}
	}
	return s.b[start:], depth == 0 && s.i > start
}

// skipString moves from a string's opening quote to its closing one.
func (s *scanner) skipString() bool {
	for s.i++; s.i < len(s.b); s.i++ {
		switch s.b[s.i] {
		case '\\':
			s.i++
		case '"':
			return true
		}
	}
	return false
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

// rangeJSONFields lists ipam.RangeConfig's JSON keys, as ipamJSONFields.
func rangeJSONFields(r *ipam.RangeConfig) []jsonField {
	return []jsonField{{"subnet", &r.Subnet}, {"rangeStart", &r.RangeStart}, {"rangeEnd", &r.RangeEnd}, {"gateway", &r.Gateway}}
}

// routeJSONFields lists ipam.RouteConfig's JSON keys, as ipamJSONFields.
func routeJSONFields(r *ipam.RouteConfig) []jsonField {
	return []jsonField{
		{"dst", &r.Dst}, {"gw", &r.GW}, {"mtu", &r.MTU}, {"advmss", &r.AdvMSS}, {"priority", &r.Priority},
		{"table", &r.Table}, {"scope", &r.Scope},
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
