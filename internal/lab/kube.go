package lab

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// APIServerURL is where the lab's API server listens, reachable from the
// lab netns and from every node.
func APIServerURL() string { return "https://" + APIServerAddr() }

// APIServerAddr is the host:port of APIServerURL.
func APIServerAddr() string { return net.JoinHostPort(UnderlayV4.String(), strconv.Itoa(apiPort)) }

// AdminConfig is a client config for this process, as a cluster admin
// (system:masters), dialing through the lab netns. QPS and Burst are raised
// so a test creating many Nodes is not throttled on its own side.
func (l *Lab) AdminConfig() *rest.Config {
	return l.restConfig(l.cp.adminToken)
}

// AgentConfig is the agents' identity, the manifest's service account, for
// this process: to check what the agent may do.
func (l *Lab) AgentConfig() *rest.Config {
	return l.restConfig(l.cp.agentToken)
}

func (l *Lab) restConfig(token string) *rest.Config {
	return &rest.Config{
		Host:            APIServerURL(),
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: l.cp.pki.CAPEM},
		Dial:            Dialer(l.Netns),
		QPS:             500,
		Burst:           1000,
		Timeout:         10 * time.Second,
	}
}

// AdminClient is a clientset on AdminConfig.
func (l *Lab) AdminClient() (*kubernetes.Clientset, error) {
	cs, err := kubernetes.NewForConfig(l.AdminConfig())
	if err != nil {
		return nil, fmt.Errorf("make admin clientset: %w", err)
	}
	return cs, nil
}

// AgentKubeconfig writes, once, the kubeconfig file the agents run with,
// and returns its path.
func (l *Lab) AgentKubeconfig() (string, error) {
	return l.writeKubeconfig("agent.kubeconfig", AgentUser, l.cp.agentToken)
}

// KubeProxyKubeconfig writes, once, the kubeconfig file kube-proxy runs
// with, as system:kube-proxy, and returns its path.
func (l *Lab) KubeProxyKubeconfig() (string, error) {
	return l.writeKubeconfig("kube-proxy.kubeconfig", proxyUser, l.cp.proxyToken)
}

// AdminKubeconfig writes, once, an admin kubeconfig file (for a person
// poking at the demo from inside the lab netns), and returns its path.
func (l *Lab) AdminKubeconfig() (string, error) {
	return l.writeKubeconfig("admin.kubeconfig", adminUser, l.cp.adminToken)
}

func (l *Lab) writeKubeconfig(name, user, token string) (string, error) {
	path := filepath.Join(l.cp.dir, name)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: %s
  user:
    token: %s
contexts:
- name: lab
  context:
    cluster: lab
    user: %s
current-context: lab
`, APIServerURL(), l.cp.pki.CAFile, user, token, user)
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		return "", fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return path, nil
}

// waitAgentAllowed polls until the agent identity may list Nodes: RBAC
// picks up a new binding through an informer, a moment after the write.
func (l *Lab) waitAgentAllowed(ctx context.Context) error {
	cs, err := kubernetes.NewForConfig(l.AgentConfig())
	if err != nil {
		return fmt.Errorf("make agent clientset: %w", err)
	}
	return poll(ctx, 100*time.Millisecond, func() error {
		_, err := cs.CoreV1().Nodes().List(ctx, listOne)
		if err != nil {
			return fmt.Errorf("list nodes as %s: %w", AgentUser, err)
		}
		return nil
	})
}

// poll calls f every interval until it returns nil or ctx ends; the error
// then names f's last failure.
func poll(ctx context.Context, interval time.Duration, f func() error) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}
