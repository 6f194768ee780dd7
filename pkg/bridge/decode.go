package bridge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// decode unmarshals stdin; its errors name the field and value when
// encoding/json tells them.
func decode(stdin []byte) (*Config, error) {
	switch {
	case len(stdin) > maxConfigSize:
		return nil, problemf(ErrDecode, "config: %d bytes, more than %d", len(stdin), maxConfigSize)
	case len(bytes.TrimSpace(stdin)) == 0:
		return nil, problemf(ErrDecode, "config: empty")
	}
	var c Config
	if err := json.Unmarshal(stdin, &c); err != nil {
		return nil, problemf(ErrDecode, "config: %s", describeJSONError(stdin, err))
	}
	return &c, nil
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
