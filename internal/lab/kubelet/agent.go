package kubelet

import (
	"fmt"
	"path/filepath"
	"time"
)

// agentMetricsAddr is where each node's agent serves /healthz, /readyz and
// /metrics: the node netns's own loopback.
const agentMetricsAddr = "127.0.0.1:9720"

// StartAgent runs nodebridge-agent as this node in its netns and mount
// namespace (not the lab's StartAgent, which runs it in the machine's mount
// namespace), so the agent and the plugin containerd execs share one
// /run/xtables.lock. Its conf dir is the one containerd watches; extra
// flags come last and win.
func (n *Node) StartAgent(agentBin, kubeconfig string, extra ...string) error {
	if n.agent != nil && !n.agent.exited() {
		return fmt.Errorf("agent of %s already running", n.Name)
	}
	argv := append(enter(n.holder), "env", "NODE_NAME=", "KUBECONFIG=", agentBin,
		"--kubeconfig="+kubeconfig, "--node-name="+n.Name,
		"--cni-conf-dir="+n.ConfDir, "--ipam-data-dir="+n.DataDir, "--metrics-addr="+agentMetricsAddr)
	var err error
	n.agent, err = startProc("agent "+n.Name, filepath.Join(n.Dir, "logs", "agent.log"), append(argv, extra...)...)
	return err
}

// StopAgent stops the node's agent with SIGTERM, as a DaemonSet update
// would; the node's routes, rules and conflist stay.
func (n *Node) StopAgent() error {
	err := n.agent.stop(10 * time.Second)
	n.agent = nil
	return err
}
