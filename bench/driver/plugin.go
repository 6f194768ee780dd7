package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"time"
)

// plugin is one program under test, exec'd as a runtime execs a CNI plugin.
type plugin struct {
	Name   string                      // as printed: "nodebridge", "nodebridge-nft", "reference", "floor-add"
	Path   string                      // the binary
	Env    []string                    // added to every call, e.g. CNI_PATH
	Conf   func(dataDir string) []byte // the stdin config of a round
	PodEnv func(i int) []string        // per-pod extras; nil for none
	NoDel  bool                        // it has no DEL: its pods go with their netns
	Rules  ruleSource                  // where its rules are counted
}

// call is one invocation.
type call struct {
	Command     string // CNI_COMMAND; empty leaves it unset
	ContainerID string
	Netns       string // a path
	IfName      string
	Env         []string
	Conf        []byte
}

// run execs the call from the calling thread, so in its netns, and returns
// the wall time of the process alone: from just before start to just after
// exit, with the command and its pipes already built.
func (p plugin) run(c call) (time.Duration, error) {
	cmd := exec.Command(p.Path)
	cmd.Env = append(append(c.env(), p.Env...), c.Env...)
	cmd.Stdin = bytes.NewReader(c.Conf)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return d, fmt.Errorf("%s %s %.12s: %w\nstdout: %s\nstderr: %s", p.Name, c.Command, c.ContainerID, err, stdout.Bytes(), stderr.Bytes())
	}
	return d, nil
}

// env is what a runtime passes: its PATH (the reference finds iptables on
// it) and the CNI_* variables, nothing else of the bench's environment. A
// call without a command gets PATH alone.
func (c call) env() []string {
	env := []string{"PATH=" + os.Getenv("PATH")}
	if c.Command == "" {
		return env
	}
	return append(env, "CNI_COMMAND="+c.Command, "CNI_CONTAINERID="+c.ContainerID,
		"CNI_NETNS="+c.Netns, "CNI_IFNAME="+c.IfName, "CNI_ARGS=")
}

// containerID is a 64-hex-digit ID, as runtimes make them, unique per
// round, plugin and pod.
func containerID(round, plugin string, i int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%s/%d", round, plugin, i))
	return hex.EncodeToString(sum[:])
}

// network is the one config every plugin runs with, bar its type and, for
// nodebridge-nft, the masquerade backend.
type network struct {
	Name, Bridge string
	Subnet       netip.Prefix // a /16
}

// conf renders the network config for plugin type typ: isGateway, ipMasq,
// hairpinMode and host-local IPAM over the subnet, state in dataDir. A
// masqBackend other than "" sets ipMasqBackend; "" leaves the field out,
// as the reference config has it.
func (n network) conf(typ, masqBackend, dataDir string) []byte {
	backend := ""
	if masqBackend != "" {
		backend = fmt.Sprintf(`"ipMasqBackend":%q,`, masqBackend)
	}
	return fmt.Appendf(nil, `{"cniVersion":"1.0.0","name":%q,"type":%q,"bridge":%q,`+
		`"isGateway":true,"ipMasq":true,%s"hairpinMode":true,`+
		`"ipam":{"type":"host-local","ranges":[[{"subnet":%q}]],"routes":[{"dst":"0.0.0.0/0"}],"dataDir":%q}}`,
		n.Name, typ, n.Bridge, backend, n.Subnet.String(), dataDir)
}

// gateway is the bridge's address, the subnet's first host, as host-local picks it.
func (n network) gateway() netip.Addr { return n.Subnet.Addr().Next() }

// podAddr is the address floor-add gives pod i: the i-th after the gateway.
func (n network) podAddr(i int) netip.Prefix {
	a := n.gateway()
	for range i + 1 {
		a = a.Next()
	}
	return netip.PrefixFrom(a, n.Subnet.Bits())
}
