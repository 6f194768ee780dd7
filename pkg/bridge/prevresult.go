package bridge

import (
	"encoding/json"
	"fmt"
)

// The checks here run on a result as decoded JSON, before it is converted
// to the current result type: the conversion from a 0.3/0.4 result, in the
// CNI library, dereferences every interface and IP entry, so a null entry
// would panic there, and later in CHECK or ADD if it got through.

// checkPrevResult insists CHECK's prevResult is present and sound (see
// resultProblems); its interface indexes must also name one of its
// interfaces. A value of the wrong type is left to the conversion, which
// reports it as a decode error.
func (c *Config) checkPrevResult() []error {
	if c.RawPrevResult == nil {
		return []error{problemf(ErrInvalid, "prevResult: required for CHECK")}
	}
	errs := resultProblems("prevResult.", c.RawPrevResult)
	ifaces, _ := c.RawPrevResult["interfaces"].([]any)
	ips, _ := c.RawPrevResult["ips"].([]any)
	for i, v := range ips {
		ip, _ := v.(map[string]any)
		idx, ok := ip["interface"].(float64)
		if ok && (idx < 0 || idx >= float64(len(ifaces)) || idx != float64(int(idx))) {
			errs = append(errs, fmt.Errorf("prevResult.ips[%d].interface %v: no such entry in prevResult.interfaces (%d entries)", i, idx, len(ifaces)))
		}
	}
	for i, err := range errs {
		errs[i] = &problem{kind: ErrInvalid, err: err}
	}
	return errs
}

// resultProblems lists the entries of the result r (decoded JSON) that its
// users cannot take: a null interface, IP or route, an IP without an
// address, a route without a destination. Messages start with prefix, the
// JSON path of r with a trailing dot, or "" when the caller names r.
func resultProblems(prefix string, r map[string]any) []error {
	var errs []error
	entries := func(key, required string) {
		list, _ := r[key].([]any)
		for i, v := range list {
			switch e, isObject := v.(map[string]any); {
			case v == nil:
				errs = append(errs, fmt.Errorf("%s%s[%d]: null", prefix, key, i))
			case isObject && required != "" && e[required] == nil:
				errs = append(errs, fmt.Errorf("%s%s[%d].%s: missing", prefix, key, i, required))
			}
		}
	}
	entries("interfaces", "")
	entries("ips", "address")
	entries("routes", "dst")
	return errs
}

// resultJSONProblems is resultProblems for a result as bytes; bytes that
// are not a JSON object are left to the decoder to report.
func resultJSONProblems(prefix string, b []byte) []error {
	var r map[string]any
	if json.Unmarshal(b, &r) != nil {
		return nil
	}
	return resultProblems(prefix, r)
}
