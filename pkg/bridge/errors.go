package bridge

import "errors"

// Sentinel errors; cmd/nodebridge maps each to its CNI error code.
var (
	ErrUnsupported = errors.New("unsupported field")      // CNI code 2
	ErrEnv         = errors.New("invalid environment")    // CNI code 4
	ErrDecode      = errors.New("cannot decode config")   // CNI code 6
	ErrInvalid     = errors.New("invalid network config") // CNI code 7
	ErrNetns       = errors.New("invalid netns")          // CNI code 8
	ErrUnavailable = errors.New("network not available")  // CNI code 50, from Status
)
