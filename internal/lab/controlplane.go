package lab

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The users of the lab's token file. The agent's is the service account the
// manifest binds its ClusterRole to, so the agents run with exactly the
// manifest's permissions.
const (
	AgentUser = "system:serviceaccount:kube-system:nodebridge-agent"
	adminUser = "lab-admin"
	// proxyUser is kube-proxy's, bound to system:node-proxier by the API
	// server's default policy.
	proxyUser = "system:kube-proxy"
)

// controlPlane is etcd and kube-apiserver in the lab netns, with their key
// material, token file and data in dir, so that a restart finds them again.
type controlPlane struct {
	dir, binDir, netns string
	pki                *pki
	adminToken         string
	agentToken         string
	proxyToken         string
	etcd, apiserver    *Process
}

// newControlPlane writes the key material and the token file.
func newControlPlane(dir, binDir, netns string) (*controlPlane, error) {
	if err := os.MkdirAll(filepath.Join(dir, "etcd"), 0o700); err != nil {
		return nil, fmt.Errorf("make control-plane dir: %w", err)
	}
	p, err := newPKI(dir, net.IP(UnderlayV4.AsSlice()), net.IP(UnderlayV6.AsSlice()), net.IP(KubernetesServiceIP.AsSlice()))
	if err != nil {
		return nil, err
	}
	c := &controlPlane{dir: dir, binDir: binDir, netns: netns, pki: p, adminToken: token(), agentToken: token(), proxyToken: token()}
	// token,user,uid,"groups": the static token file of --token-auth-file.
	tokens := fmt.Sprintf("%s,%s,%s,\"system:masters\"\n", c.adminToken, adminUser, adminUser) +
		fmt.Sprintf("%s,%s,%s,\"system:serviceaccounts,system:serviceaccounts:kube-system,system:authenticated\"\n",
			c.agentToken, AgentUser, "nodebridge-agent-uid") +
		fmt.Sprintf("%s,%s,%s\n", c.proxyToken, proxyUser, proxyUser)
	if err := os.WriteFile(c.path("tokens.csv"), []byte(tokens), 0o600); err != nil {
		return nil, fmt.Errorf("write token file: %w", err)
	}
	return c, nil
}

func token() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand does not fail on Linux
	return hex.EncodeToString(b)
}

func (c *controlPlane) path(name string) string { return filepath.Join(c.dir, name) }

// start runs etcd, then the API server, and waits for the API server's
// /readyz. Each process appends to its log, so a restart keeps the history.
func (c *controlPlane) start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			err = errors.Join(err, c.stop())
		}
	}()
	c.etcd, err = startProcess("etcd", c.netns, c.path("etcd.log"), nil, c.etcdArgs()...)
	if err != nil {
		return err
	}
	c.apiserver, err = startProcess("kube-apiserver", c.netns, c.path("kube-apiserver.log"), nil, c.apiserverArgs()...)
	if err != nil {
		return err
	}
	return c.waitReady(ctx)
}

// etcdArgs: one member on the lab's loopback; no fsync, since the data only
// has to survive a kill of the process, not of the machine.
func (c *controlPlane) etcdArgs() []string {
	return []string{filepath.Join(c.binDir, "etcd"),
		"--name=lab", "--data-dir=" + c.path("etcd"),
		"--listen-client-urls=http://127.0.0.1:2379", "--advertise-client-urls=http://127.0.0.1:2379",
		"--listen-peer-urls=http://127.0.0.1:2380", "--initial-advertise-peer-urls=http://127.0.0.1:2380",
		"--initial-cluster=lab=http://127.0.0.1:2380", "--unsafe-no-fsync", "--log-level=warn",
	}
}

// apiserverArgs: a plain API server on the underlay address, tokens for
// authentication, Node and RBAC authorization as a real cluster has.
// --shutdown-send-retry-after lets a stop end open watches at once instead
// of waiting for them up to a minute.
func (c *controlPlane) apiserverArgs() []string {
	return []string{filepath.Join(c.binDir, "kube-apiserver"),
		"--etcd-servers=http://127.0.0.1:2379",
		"--bind-address=" + UnderlayV4.String(), "--advertise-address=" + UnderlayV4.String(),
		"--secure-port=" + strconv.Itoa(apiPort),
		"--tls-cert-file=" + c.pki.CertFile, "--tls-private-key-file=" + c.pki.KeyFile,
		"--cert-dir=" + c.dir,
		"--token-auth-file=" + c.path("tokens.csv"),
		"--authorization-mode=Node,RBAC",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + c.pki.SAPubFile,
		"--service-account-signing-key-file=" + c.pki.SAKeyFile,
		"--service-cluster-ip-range=10.96.0.0/12",
		// The kubernetes Service's endpoint is the API server, for kube-proxy.
		"--endpoint-reconciler-type=lease",
		"--shutdown-send-retry-after=true",
		// Nodes' names resolve nowhere here: exec and logs go to the InternalIP.
		"--kubelet-preferred-address-types=InternalIP",
		"--profiling=false",
		"--v=1",
	}
}

// waitReady polls /readyz until it answers 200, one of the processes exits,
// or ctx ends.
func (c *controlPlane) waitReady(ctx context.Context) error {
	client := c.httpClient()
	defer client.CloseIdleConnections()
	url := fmt.Sprintf("https://%s/readyz", net.JoinHostPort(UnderlayV4.String(), strconv.Itoa(apiPort)))
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	last := "no answer yet"
	for {
		for _, p := range []*Process{c.etcd, c.apiserver} {
			if done, err := p.Exited(); done {
				return fmt.Errorf("%s exited before the API server was ready: %v\n%s", p.Name, err, tail(p.Logs(), 40))
			}
		}
		if code, body, err := c.get(ctx, client, url); err != nil {
			last = err.Error()
		} else if code == http.StatusOK {
			return nil
		} else {
			last = fmt.Sprintf("%d %s", code, tail(body, 10))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for kube-apiserver /readyz (last: %s): %w\n%s", last, ctx.Err(), tail(c.apiserver.Logs(), 40))
		case <-tick.C:
		}
	}
}

// httpClient reaches the API server from this process through the lab netns,
// as the admin.
func (c *controlPlane) httpClient() *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.pki.CAPEM)
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DialContext:     Dialer(c.netns),
			TLSClientConfig: &tls.Config{RootCAs: pool},
		},
	}
}

func (c *controlPlane) get(ctx context.Context, client *http.Client, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", fmt.Errorf("make request for %s: %w", url, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.adminToken)
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, "", fmt.Errorf("read %s: %w", url, err)
	}
	return resp.StatusCode, string(body), nil
}

// kill SIGKILLs the API server, then etcd.
func (c *controlPlane) kill() {
	for _, p := range []*Process{c.apiserver, c.etcd} {
		if p != nil {
			p.Kill()
		}
	}
}

// stop ends the API server, then etcd, each with a grace period.
func (c *controlPlane) stop() error {
	var err error
	for _, p := range []*Process{c.apiserver, c.etcd} {
		if p != nil {
			err = errors.Join(err, p.Stop(15*time.Second))
		}
	}
	return err
}

func (c *controlPlane) logs() string {
	var sb strings.Builder
	for _, p := range []*Process{c.etcd, c.apiserver} {
		if p != nil {
			fmt.Fprintf(&sb, "--- %s (%s), last lines:\n%s\n", p.Name, p.LogFile, tail(p.Logs(), 60))
		}
	}
	return sb.String()
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
