package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
)

// NetworkName is the name of the CNI network the lab's agents write (their
// --network-name default).
const NetworkName = "nodebridge"

// Pod is a pod netns on a node, attached by CNI ADD of the conflist the
// node's agent wrote: the path a container runtime takes.
type Pod struct {
	Name  string
	Netns string
	IPs   []netip.Addr // from the ADD result, one per family
	host  string       // the host end of its veth, from the ADD result
	node  *Node
	cache string // the private /var/lib of this pod's cnitool runs
	caps  string // CAP_ARGS of its cnitool runs: the runtime's capability arguments
}

// AddPod creates a pod netns on n and runs CNI ADD for it. It fails if the
// agent has not written its conflist yet.
func (n *Node) AddPod(ctx context.Context, name string) (*Pod, error) {
	return n.AddPodWithCaps(ctx, name, nil)
}

// AddPodWithCaps is AddPod with the capability arguments a runtime passes
// (e.g. {"bandwidth": {...}}), which reach the plugins whose conflist entry
// declares the capability.
func (n *Node) AddPodWithCaps(ctx context.Context, name string, caps map[string]any) (_ *Pod, err error) {
	p := &Pod{Name: name, node: n, cache: filepath.Join(n.dir, "pods", name)}
	if caps != nil {
		b, err := json.Marshal(caps)
		if err != nil {
			return nil, fmt.Errorf("capability arguments of pod %s: %w", name, err)
		}
		p.caps = string(b)
	}
	if err := os.MkdirAll(p.cache, 0o755); err != nil {
		return nil, fmt.Errorf("make cache dir of pod %s: %w", name, err)
	}
	if p.Netns, err = addNetns(ctx, n.lab.Prefix+"pod"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, delNetns(p.Netns))
		}
	}()
	out, err := p.cnitool(ctx, "add")
	if err != nil {
		return nil, err
	}
	var res struct {
		Interfaces []struct {
			Name    string `json:"name"`
			Sandbox string `json:"sandbox"`
		} `json:"interfaces"`
		IPs []struct {
			Address netip.Prefix `json:"address"`
		} `json:"ips"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, fmt.Errorf("decode CNI ADD result of pod %s: %w: %s", name, err, out)
	}
	for _, ip := range res.IPs {
		p.IPs = append(p.IPs, ip.Address.Addr())
	}
	// The result lists the bridge, then the host end, then the pod's end.
	for _, i := range res.Interfaces {
		if i.Sandbox == "" && i.Name != "" {
			p.host = i.Name
		}
	}
	return p, nil
}

// HostIfName is the host end of the pod's veth, as the ADD result names it.
func (p *Pod) HostIfName() string { return p.host }

// IP returns the pod's address of the family of v6, or the zero Addr.
func (p *Pod) IP(v6 bool) netip.Addr {
	for _, a := range p.IPs {
		if a.Is6() == v6 {
			return a
		}
	}
	return netip.Addr{}
}

// Exec runs argv inside the pod netns and returns its combined output.
func (p *Pod) Exec(ctx context.Context, argv ...string) (string, error) {
	return run(ctx, append([]string{"ip", "netns", "exec", p.Netns}, argv...)...)
}

// Close runs CNI DEL and deletes the pod netns.
func (p *Pod) Close(ctx context.Context) error {
	_, err := p.cnitool(ctx, "del")
	err = errors.Join(err, delNetns(p.Netns))
	if err2 := os.RemoveAll(p.cache); err2 != nil {
		err = errors.Join(err, fmt.Errorf("remove cache of pod %s: %w", p.Name, err2))
	}
	return err
}

// cnitool runs cnitool VERB on the node's network for this pod, inside the
// node netns and inside a private mount namespace whose /var/lib is the
// pod's cache dir, so libcni's result cache never reaches the machine's
// /var/lib/cni. It returns stdout.
func (p *Pod) cnitool(ctx context.Context, verb string) ([]byte, error) {
	n, l := p.node, p.node.lab
	argv := []string{"netns", "exec", n.Netns, "unshare", "-m", "--propagation", "private",
		"sh", "-c", `mount --bind "$0" /var/lib && exec "$@"`, p.cache,
		l.CNITool, verb, NetworkName, nsPath(p.Netns)}
	cmd := exec.CommandContext(ctx, "ip", argv...)
	cmd.Env = append(os.Environ(), "NETCONFPATH="+n.ConfDir, "CNI_PATH="+l.CNIBinDir)
	if p.caps != "" {
		cmd.Env = append(cmd.Env, "CAP_ARGS="+p.caps)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("cnitool %s %s for pod %s on %s: %w\nstdout: %s\nstderr: %s",
			verb, NetworkName, p.Name, n.Name, err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes(), nil
}
