// Command nodebridge is a CNI plugin: a faster, complete drop-in for the
// reference bridge + host-local plugins. Runtimes exec it once per verb.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/nodebridge/nodebridge/pkg/bridge"
	"github.com/nodebridge/nodebridge/pkg/ipam"
	"github.com/nodebridge/nodebridge/pkg/rules"
	"github.com/nodebridge/nodebridge/pkg/spoofchk"
)

// buildVersion is stamped by the Makefile with -ldflags "-X main.buildVersion=...".
var buildVersion = "dev"

// timeout bounds one invocation; a lock still held after it answers "try again" (11).
const timeout = 55 * time.Second

func main() {
	if os.Args[0] == bridge.ReaperName { // started by a DEL: no CNI call
		arg := os.Getenv(bridge.ReapEnv)
		if bridge.Reap(arg) != nil {
			os.Exit(1) // stderr is /dev/null; GC deletes what is left
		}
		return
	}
	if len(os.Args) == 2 && os.Args[1] == "--version" { // an operator's question, not a CNI call
		fmt.Println("nodebridge " + buildVersion)
		return
	}
	os.Exit(serve(os.Getenv, os.Stdin, os.Stdout, os.Stderr))
}

// verb is one CNI verb once its request is parsed.
type verb func(context.Context, *bridge.Config, *bridge.Host, bridge.Pod) error

// run is one verb: decode the config, check its cniVersion, parse as much
// of the request as the verb reads (m), build the host side, then f under
// the invocation's deadline. Every error leaves as a CNI error object.
func run(c *call, m bridge.Mode, f verb) (err error) {
	defer func() {
		// bridge.Add turns its own panics into errors after its undo; this
		// catches the rest (parse, DEL, CHECK, GC, STATUS, printing).
		if r := recover(); r != nil {
			err = cniError(&bridge.PanicError{Value: r, Stack: debug.Stack()})
		}
	}()
	ctx, cancel := withDeadline(time.Now().Add(timeout))
	defer cancel()
	conf, err := bridge.Decode(c.stdin)
	if err != nil {
		return cniError(err)
	}
	if err := conf.CheckNetworkName(); err != nil { // first, as skel has it
		return cniError(err)
	}
	if err := checkVersion(c.command, conf.CNIVersion); err != nil {
		return err
	}
	if err := conf.Resolve(m, c.pod); err != nil {
		return cniError(err)
	}
	h, err := newHost(conf)
	if err != nil {
		return cniError(err)
	}
	return cniError(f(ctx, conf, h, c.pod))
}

// newHost builds what the verbs act on the node through: the log sink
// (stderr with NODEBRIDGE_TRACE=1), and the rules layer logging to it; the
// rules backend only when the network masquerades (without ipMasqBackend,
// rules.Select reads the host's ruleset to choose only when a call needs
// it); the spoof check only with macspoofchk; this binary as the reaper.
func newHost(c *bridge.Config) (*bridge.Host, error) {
	h := &bridge.Host{Reaper: "/proc/self/exe"}
	if os.Getenv("NODEBRIDGE_TRACE") == "1" {
		h.Logf = func(format string, args ...any) { fmt.Fprintf(os.Stderr, "nodebridge: "+format+"\n", args...) }
	}
	if c.IPMasq {
		backend, err := rules.Select(c.RulesBackend(), h.Logf)
		if err != nil {
			return nil, fmt.Errorf("%w: ipMasqBackend %q: %w", bridge.ErrInvalid, c.IPMasqBackend, err)
		}
		h.Rules = backend
	}
	if c.MacSpoofChk {
		h.Spoof = spoofchk.New(h.Logf)
	}
	return h, nil
}

func cmdAdd(in *call) error {
	return run(in, bridge.ModeAdd, func(ctx context.Context, c *bridge.Config, h *bridge.Host, p bridge.Pod) error {
		res, err := bridge.Add(ctx, c, h, p)
		if err != nil {
			return err
		}
		return bridge.PrintResult(os.Stdout, res, c.CNIVersion)
	})
}

func cmdDel(in *call) error {
	return run(in, bridge.ModeRelease, bridge.Del)
}

func cmdCheck(in *call) error {
	return run(in, bridge.ModeCheck, func(ctx context.Context, c *bridge.Config, h *bridge.Host, p bridge.Pod) error {
		prev, err := prevResult(c.Raw)
		if err != nil {
			return err
		}
		return bridge.Check(ctx, c, h, p, prev)
	})
}

func cmdStatus(in *call) error {
	return run(in, bridge.ModeStatus, func(ctx context.Context, c *bridge.Config, _ *bridge.Host, _ bridge.Pod) error {
		return bridge.Status(ctx, c)
	})
}

func cmdGC(in *call) error {
	return run(in, bridge.ModeRelease, func(ctx context.Context, c *bridge.Config, h *bridge.Host, _ bridge.Pod) error {
		return bridge.GC(ctx, c, h)
	})
}

// prevResult converts the request's prevResult, in whatever version it came,
// to the current result type. ParseFor(ModeCheck) made sure it is there and
// has no entry the conversion cannot take.
func prevResult(stdin []byte) (*current.Result, error) {
	var nc types.NetConf
	if err := json.Unmarshal(stdin, &nc); err != nil {
		return nil, fmt.Errorf("%w: %w", bridge.ErrDecode, err)
	}
	if err := version.ParsePrevResult(&nc); err != nil {
		return nil, fmt.Errorf("%w: prevResult: %w", bridge.ErrDecode, err)
	}
	prev, err := current.NewResultFromResult(nc.PrevResult)
	if err != nil {
		return nil, fmt.Errorf("%w: prevResult: %w", bridge.ErrDecode, err)
	}
	return prev, nil
}

// cniError turns a package error into a CNI error object with the code its
// cause calls for; nil stays nil. A panic's stack goes to stderr, its value
// into the message.
func cniError(err error) error {
	if err == nil {
		return nil
	}
	var te *types.Error
	if errors.As(err, &te) {
		return te
	}
	var pe *bridge.PanicError
	if errors.As(err, &pe) {
		fmt.Fprintf(os.Stderr, "nodebridge: %v\n%s", pe, pe.Stack)
	}
	return types.NewError(errorCode(err), err.Error(), "")
}

func errorCode(err error) uint {
	switch {
	case errors.Is(err, bridge.ErrUnsupported), errors.Is(err, ipam.ErrUnsupported):
		return types.ErrUnsupportedField
	case errors.Is(err, bridge.ErrEnv):
		return types.ErrInvalidEnvironmentVariables
	case errors.Is(err, bridge.ErrDecode):
		return types.ErrDecodingFailure
	case errors.Is(err, bridge.ErrInvalid), errors.Is(err, ipam.ErrInvalid):
		return types.ErrInvalidNetworkConfig
	case errors.Is(err, bridge.ErrNetns):
		return types.ErrInvalidNetNS
	case errors.Is(err, ipam.ErrLocked), errors.Is(err, context.DeadlineExceeded):
		return types.ErrTryAgainLater
	case errors.Is(err, bridge.ErrUnavailable):
		return types.ErrPluginNotAvailable
	}
	// Anything else, ipam.ErrUnsafeDir included: the config is valid (not 7)
	// and retrying cannot help (not 11); the node needs an operator.
	return types.ErrInternal
}
