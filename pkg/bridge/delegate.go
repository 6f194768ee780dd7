package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/types/create"
)

// delegated is IPAM by the plugin ipam.type names, run from CNI_PATH with
// the runtime's environment and our stdin, as the reference plugins do.
// Without our store, the network's rules follow the bridge's ports.
type delegated struct{}

// add gets the addresses from the plugin and ensures the rules for their
// subnets.
func (delegated) add(ctx context.Context, c *Config, h *Host, _ Pod) (res *current.Result, err error) {
	res, err = delegateAdd(ctx, c)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			res, err = nil, fmtJoin(err, delegateDel(ctx, c))
		}
	}()
	defer catchPanic(&err) // the addresses are not in Add's undo yet
	if err := h.rules().EnsureNetwork(ctx, ruleNetworkOf(c, res.IPs)); err != nil {
		return nil, fmt.Errorf("install rules of network %s: %w", c.Name, err)
	}
	return res, nil
}

func (delegated) release(ctx context.Context, c *Config, h *Host, _ Pod) error {
	if err := delegateDel(ctx, c); err != nil {
		return err
	}
	return deleteRulesIfNoPorts(ctx, c, h)
}

// check verifies the rules of the subnets of prev's addresses; the plugin
// holds the allocation.
func (delegated) check(ctx context.Context, c *Config, h *Host, _ Pod, prev *current.Result) error {
	return checkRulesOf(ctx, c, h, prev.IPs)
}

func (delegated) status(ctx context.Context, c *Config) error {
	if _, err := delegateIPAM(ctx, c, "STATUS"); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

func (delegated) gc(ctx context.Context, c *Config, _ *Host) error {
	_, err := delegateIPAM(ctx, c, "GC")
	return err
}

// delegateIPAM runs the IPAM plugin named by ipam.type from CNI_PATH with
// the given verb, the runtime's environment and our stdin, as the reference
// plugins do. (cni's pkg/invoke would do this too, but it pulls OpenTelemetry
// into a binary exec'd once per pod.)
func delegateIPAM(ctx context.Context, c *Config, verb string) ([]byte, error) {
	bin, err := findPlugin(c.IPAM.Type, os.Getenv("CNI_PATH"))
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(os.Environ(), "CNI_COMMAND="+verb)
	cmd.Stdin = bytes.NewReader(c.Raw)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var perr types.Error
		if json.Unmarshal(stdout.Bytes(), &perr) == nil && perr.Msg != "" {
			return nil, fmt.Errorf("ipam plugin %s %s: %w", c.IPAM.Type, verb, &perr)
		}
		return nil, fmt.Errorf("ipam plugin %s %s: %w: %s", c.IPAM.Type, verb, err, stderr.Bytes())
	}
	return stdout.Bytes(), nil
}

// findPlugin looks name up in the CNI_PATH directories.
func findPlugin(name, path string) (string, error) {
	for _, dir := range filepath.SplitList(path) {
		bin := filepath.Join(dir, name)
		if st, err := os.Stat(bin); err == nil && st.Mode().IsRegular() {
			return bin, nil
		}
	}
	return "", fmt.Errorf("%w: ipam.type %q: no such plugin in CNI_PATH %q", ErrInvalid, name, path)
}

// delegateAdd runs the IPAM plugin's ADD and converts its result.
func delegateAdd(ctx context.Context, c *Config) (*current.Result, error) {
	out, err := delegateIPAM(ctx, c, "ADD")
	if err != nil {
		return nil, err
	}
	err = errors.Join(resultJSONProblems("", out)...)
	var r types.Result
	if err == nil {
		r, err = create.CreateFromBytes(out)
	}
	if err == nil {
		var res *current.Result
		if res, err = current.NewResultFromResult(r); err == nil {
			return res, nil
		}
	}
	_, derr := delegateIPAM(ctx, c, "DEL")
	return nil, fmtJoin(fmt.Errorf("ipam plugin %s result: %w", c.IPAM.Type, err), derr)
}

// delegateDel runs the IPAM plugin's DEL.
func delegateDel(ctx context.Context, c *Config) error {
	_, err := delegateIPAM(ctx, c, "DEL")
	return err
}
