package ipam

import (
	"errors"
	"fmt"
)

// Sentinel errors; the cmd layer maps them to CNI error codes.
var (
	// ErrInvalid marks a bad "ipam" section or requested address (CNI code 7).
	ErrInvalid = errors.New("invalid ipam config")
	// ErrUnsupported marks a well-formed ipam value the kernel cannot
	// apply, such as a scope on an IPv6 route (CNI code 2).
	ErrUnsupported = errors.New("unsupported ipam field")
	// ErrExhausted means a range set has no free address left.
	ErrExhausted = errors.New("no free address")
	// ErrLocked means the network's lock was not acquired before the context ended (CNI code 11).
	ErrLocked = errors.New("network store locked")
	// ErrUnsafeDir means the network directory is another user's, or
	// writable by group or others, who could hold its lock or remove its
	// records (CNI code 999: the config is valid, the node's state is not).
	ErrUnsafeDir = errors.New("network directory not safe")
)

// fieldError is one bad input value. Its message names where the value came
// from and the value itself, `ipam.subnet "10.0.0.0/33": not a CIDR`, without
// the sentinel's text, so a joined list of them stays readable.
type fieldError struct {
	path    string // JSON path, or what the value is ("name", "requested address")
	value   string // omitted from the message when empty
	problem string
	cause   error // optional underlying error, e.g. from reading resolvConf
	kind    error // ErrInvalid when nil, else ErrUnsupported
}

// invalid returns a fieldError wrapping ErrInvalid.
func invalid(path, value, format string, args ...any) error {
	return &fieldError{path: path, value: value, problem: fmt.Sprintf(format, args...)}
}

func (e *fieldError) Error() string {
	if e.value == "" {
		return e.path + ": " + e.problem
	}
	return fmt.Sprintf("%s %q: %s", e.path, e.value, e.problem)
}

// unsupported returns a fieldError wrapping ErrUnsupported.
func unsupported(path, value, format string, args ...any) error {
	return &fieldError{path: path, value: value, problem: fmt.Sprintf(format, args...), kind: ErrUnsupported}
}

// Unwrap lets errors.Is find ErrInvalid (or ErrUnsupported), and the cause
// when there is one.
func (e *fieldError) Unwrap() []error {
	kind := e.kind
	if kind == nil {
		kind = ErrInvalid
	}
	if e.cause == nil {
		return []error{kind}
	}
	return []error{kind, e.cause}
}
