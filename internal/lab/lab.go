// Package lab runs a small Kubernetes cluster for nodebridge's multi-node
// tests and demo, entirely in network namespaces of its own: a "lab" netns
// whose bridge is the underlay (198.18.0.1/24, fd00:198:18::1/64), with a
// second underlay subnet it routes to (198.18.1.1/24, fd00:198:18:1::1/64:
// a router that knows no pod route), and which runs a real etcd and
// kube-apiserver, node netns wired to that bridge, each
// running its own nodebridge-agent, and pod netns attached by CNI ADD with
// the conflist the node's agent wrote. It never changes the machine's own
// netns, and Close removes every netns, process and file it made.
package lab

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
)

// The lab's fixed addresses: the underlay host (the lab netns) and the API
// server listening on it.
var (
	UnderlayV4 = netip.MustParseAddr("198.18.0.1")
	UnderlayV6 = netip.MustParseAddr("fd00:198:18::1")
	// KubernetesServiceIP is the ClusterIP of the default/kubernetes
	// Service (the first of --service-cluster-ip-range), where pods with
	// in-cluster config reach the API server: in the serving certificate.
	KubernetesServiceIP = netip.MustParseAddr("10.96.0.1")
)

const (
	underlayBridge = "underlay0" // subnet 0; subnet 1's is underlay1
	apiPort        = 6443
	// Subnets is how many underlay subnets the lab has.
	Subnets = 2
)

// bridgeOf names the underlay bridge of subnet s.
func bridgeOf(s int) string { return fmt.Sprintf("underlay%d", s) }

// GatewayV4 and GatewayV6 are the lab's addresses on subnet s: the nodes'
// default gateways. Subnet 0's are UnderlayV4 and UnderlayV6.
func GatewayV4(s int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, byte(s), 1}) }

// GatewayV6 is the IPv6 twin of GatewayV4.
func GatewayV6(s int) netip.Addr { return netip.MustParseAddr(fmt.Sprintf("fd00:198:18:%d::1", s)) }

// Options says where the lab puts things and what it runs.
type Options struct {
	Prefix string // start of every netns name, e.g. "nb1f2e-" (testenv's per-process prefix)
	Dir    string // for certificates, kubeconfigs, etcd data, logs; the caller removes it
	K8sBin string // dir holding kube-apiserver and etcd (see Binaries)

	AgentBin  string // nodebridge-agent, run in each node
	CNIBinDir string // CNI_PATH for pods: nodebridge and the reference plugins BuildBinaries linked
	CNITool   string // cnitool, which runs a node's conflist
}

// Lab is the underlay netns and the control plane in it.
type Lab struct {
	Options
	Netns string // the lab netns
	cp    *controlPlane
}

// Start creates the lab netns and its underlay bridge, then starts etcd and
// the API server and waits until the API server is ready. On error it
// undoes what it made.
func Start(ctx context.Context, o Options) (_ *Lab, err error) {
	l := &Lab{Options: o}
	if l.Netns, err = addNetns(ctx, o.Prefix+"lab"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, l.Close())
		}
	}()
	if err := l.setupUnderlay(ctx); err != nil {
		return nil, err
	}
	l.cp, err = newControlPlane(filepath.Join(o.Dir, "control-plane"), o.K8sBin, l.Netns)
	if err != nil {
		return nil, err
	}
	if err := l.cp.start(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

// setupUnderlay makes a bridge per underlay subnet, every node's uplink
// plugging into one, carrying the lab's addresses there, and lets the lab
// netns route between them.
func (l *Lab) setupUnderlay(ctx context.Context) error {
	var steps [][]string
	for s := range Subnets {
		br := bridgeOf(s)
		steps = append(steps,
			// A MAC of its own: a bridge without one takes its lowest
			// port's, and a node moved to the other subnet would take it
			// away from under the neighbour caches of the rest.
			[]string{"ip", "-n", l.Netns, "link", "add", br, "address", fmt.Sprintf("02:00:c6:12:%02x:01", s), "type", "bridge"},
			[]string{"ip", "-n", l.Netns, "addr", "add", GatewayV4(s).String() + "/24", "dev", br},
			[]string{"ip", "-n", l.Netns, "addr", "add", GatewayV6(s).String() + "/64", "dev", br, "nodad"},
			[]string{"ip", "-n", l.Netns, "link", "set", br, "up"})
	}
	steps = append(steps, []string{"ip", "netns", "exec", l.Netns, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"})
	for _, argv := range steps {
		if _, err := run(ctx, argv...); err != nil {
			return fmt.Errorf("set up underlay in %s: %w", l.Netns, err)
		}
	}
	return nil
}

// Close stops the control plane and deletes the lab netns; nodes must be
// closed first. It keeps going past a failed step.
func (l *Lab) Close() error {
	var err error
	if l.cp != nil {
		err = l.cp.stop()
	}
	if l.Netns != "" {
		err = errors.Join(err, delNetns(l.Netns))
	}
	return err
}

// KillControlPlane SIGKILLs the API server and etcd, as a crash or a power
// cut of the control-plane host would; StartControlPlane brings them back
// on the same data.
func (l *Lab) KillControlPlane() { l.cp.kill() }

// StartControlPlane starts etcd and the API server on the data they had and
// waits until the API server is ready.
func (l *Lab) StartControlPlane(ctx context.Context) error { return l.cp.start(ctx) }

// ControlPlaneLogs returns the etcd and API server logs, for a failure.
func (l *Lab) ControlPlaneLogs() string { return l.cp.logs() }

// addNetns creates a netns named prefix plus a random suffix, loopback up.
// Equivalent to: ip netns add NAME; ip -n NAME link set lo up
func addNetns(ctx context.Context, prefix string) (string, error) {
	name := fmt.Sprintf("%s-%06x", prefix, rand.Uint32()>>8)
	if _, err := run(ctx, "ip", "netns", "add", name); err != nil {
		return "", fmt.Errorf("add netns %s: %w", name, err)
	}
	if _, err := run(ctx, "ip", "-n", name, "link", "set", "lo", "up"); err != nil {
		return "", errors.Join(fmt.Errorf("bring up lo in %s: %w", name, err), delNetns(name))
	}
	return name, nil
}

// delNetns deletes a netns, which also deletes the links in it.
// Equivalent to: ip netns del NAME
func delNetns(name string) error {
	if _, err := os.Stat(nsPath(name)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := run(ctx, "ip", "netns", "del", name); err != nil {
		return fmt.Errorf("delete netns %s: %w", name, err)
	}
	return nil
}

// nsPath is the bind mount ip netns makes for a named netns.
func nsPath(name string) string { return "/var/run/netns/" + name }

// DialContext is a net.Dialer's DialContext that opens its socket inside
// the named netns, so this process reaches the lab's addresses (the API
// server, an agent's 127.0.0.1 listener, a pod) without a route in its own.
type DialContext func(ctx context.Context, network, addr string) (net.Conn, error)

// Dialer returns the DialContext of netns.
func Dialer(netns string) DialContext {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := ns.WithNetNSPath(nsPath(netns), func(ns.NetNS) error {
			var err error
			// The socket is made on this locked thread, so in netns;
			// it stays there whichever thread uses it later.
			c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("dial %s %s in netns %s: %w", network, addr, netns, err)
		}
		return c, nil
	}
}

// Listen opens a listener inside the named netns.
func Listen(netns, network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := ns.WithNetNSPath(nsPath(netns), func(ns.NetNS) error {
		var err error
		ln, err = net.Listen(network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen on %s %s in netns %s: %w", network, addr, netns, err)
	}
	return ln, nil
}
