// Command demo-lab runs the multi-node lab as a demo (make demo-lab): a
// real kube-apiserver and etcd, three dual-stack nodes each
// running nodebridge-agent, and a pod on each. It prints the Nodes, each
// node's agent routes and cross-node pings, then removes everything it made.
// Needs root; it changes nothing outside the network namespaces it creates.
//
//	go run ./hack/demo-lab [-hold]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/nodebridge/nodebridge/internal/lab"
	"github.com/nodebridge/nodebridge/internal/testenv"
)

func main() {
	hold := flag.Bool("hold", false, "after the demo, keep the cluster up until ^C")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *hold); err != nil {
		fmt.Fprintln(os.Stderr, "demo-cluster:", err)
		os.Exit(1)
	}
}

// demo is what run made, in the order it undoes it.
type demo struct {
	dir   string
	lab   *lab.Lab
	nodes []*lab.Node
	pods  []*lab.Pod
}

// close removes pods, nodes, the lab and the temp dir, past failures.
func (d *demo) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var err error
	for _, p := range d.pods {
		err = errors.Join(err, p.Close(ctx))
	}
	for _, n := range d.nodes {
		err = errors.Join(err, n.Close())
	}
	if d.lab != nil {
		err = errors.Join(err, d.lab.Close())
	}
	return errors.Join(err, os.RemoveAll(d.dir))
}

func run(ctx context.Context, hold bool) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("needs root: it creates network namespaces")
	}
	d := &demo{}
	if d.dir, err = os.MkdirTemp("", "nodebridge-demo-cluster-"); err != nil {
		return fmt.Errorf("make temp dir: %w", err)
	}
	defer func() {
		fmt.Println("== cleaning up")
		err = errors.Join(err, d.close())
	}()
	if err := d.start(ctx); err != nil {
		return err
	}
	cs, err := d.lab.AdminClient()
	if err != nil {
		return err
	}
	if err := d.addNodes(ctx, cs); err != nil {
		return err
	}
	if err := d.show(ctx, cs); err != nil {
		return err
	}
	if hold {
		kc, _ := d.lab.AdminKubeconfig() // only printed, for the curious
		fmt.Printf("== holding; admin kubeconfig %s (reachable inside netns %s); ^C to clean up\n", kc, d.lab.Netns)
		<-ctx.Done()
	}
	return nil
}

// start builds the binaries, starts the lab and applies the manifest's RBAC.
func (d *demo) start(ctx context.Context) error {
	fmt.Println("== building kube-apiserver, etcd, nodebridge and nodebridge-agent (cached after the first run)")
	k8sBin, err := lab.Binaries(ctx)
	if err != nil {
		return err
	}
	bin := d.dir + "/bin"
	if err := os.Mkdir(bin, 0o755); err != nil {
		return fmt.Errorf("make bin dir: %w", err)
	}
	cnitool, err := lab.BuildWithTools(ctx, bin)
	if err != nil {
		return err
	}
	fmt.Println("== starting etcd and kube-apiserver in the lab netns, on", lab.APIServerURL())
	d.lab, err = lab.Start(ctx, lab.Options{
		// testenv's per-process prefix, so a test run at the same time
		// tells these netns from its own.
		Prefix: testenv.NetnsPrefix(), Dir: d.dir + "/lab", K8sBin: k8sBin,
		AgentBin: bin + "/nodebridge-agent", CNIBinDir: bin, CNITool: cnitool,
	})
	if err != nil {
		return err
	}
	return d.lab.ApplyManifestRBAC(ctx)
}

// addNodes makes three dual-stack nodes with their Node objects and agents,
// waits until every agent is ready, then attaches a pod to each.
func (d *demo) addNodes(ctx context.Context, cs kubernetes.Interface) error {
	for i := 1; i <= 3; i++ {
		s := lab.NodeSpec{
			Name: fmt.Sprintf("node-%d", i),
			PodCIDRs: []netip.Prefix{netip.MustParsePrefix(fmt.Sprintf("10.244.%d.0/24", i)),
				netip.MustParsePrefix(fmt.Sprintf("fd00:10:244:%d::/64", i))},
			InternalIPs: []netip.Addr{lab.NodeIPv4(i), lab.NodeIPv6(i)},
		}
		n, err := d.lab.AddNode(ctx, s.Name, i)
		if err != nil {
			return err
		}
		d.nodes = append(d.nodes, n)
		if err := lab.CreateNode(ctx, cs, s); err != nil {
			return err
		}
		if err := n.StartAgent("--cluster-cidr=10.244.0.0/16", "--cluster-cidr=fd00:10:244::/56"); err != nil {
			return err
		}
	}
	for _, n := range d.nodes {
		if err := n.WaitReady(ctx, 30*time.Second); err != nil {
			return err
		}
		p, err := n.AddPod(ctx, "pod-on-"+n.Name)
		if err != nil {
			return err
		}
		d.pods = append(d.pods, p)
	}
	return nil
}

// show prints the Nodes, each node's agent routes, and pings from each pod
// to the pod of the next node in both families.
func (d *demo) show(ctx context.Context, cs kubernetes.Interface) error {
	list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	fmt.Printf("== Nodes\n%-8s %-36s %-30s %s\n", "NAME", "POD CIDRS", "INTERNAL IPS", "NETWORK UNAVAILABLE")
	for _, n := range list.Items {
		fmt.Printf("%-8s %-36s %-30s %s\n", n.Name, strings.Join(n.Spec.PodCIDRs, ","), internalIPs(n), networkCondition(n))
	}
	for _, n := range d.nodes {
		fmt.Printf("== routes of %s (ip route show proto 78)\n", n.Name)
		for _, fam := range []string{"-4", "-6"} {
			out, err := n.Exec(ctx, "ip", fam, "route", "show", "proto", "78")
			if err != nil {
				return err
			}
			fmt.Print(out)
		}
	}
	var failed []string
	for i, p := range d.pods {
		q := d.pods[(i+1)%len(d.pods)]
		for _, v6 := range []bool{false, true} {
			dst := q.IP(v6)
			out, err := p.Exec(ctx, "ping", "-c", "2", "-W", "2", dst.String())
			fmt.Printf("== ping from %s (%s) to %s (%s)\n%s", p.Name, p.IP(v6), q.Name, dst, lastLines(out, 2))
			if err != nil {
				failed = append(failed, fmt.Sprintf("%s -> %s", p.Name, dst))
			}
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("pings failed: %s", strings.Join(failed, ", "))
	}
	return nil
}

func internalIPs(n corev1.Node) string {
	var ips []string
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			ips = append(ips, a.Address)
		}
	}
	return strings.Join(ips, ",")
}

func networkCondition(n corev1.Node) string {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeNetworkUnavailable {
			return fmt.Sprintf("%s (%s)", c.Status, c.Reason)
		}
	}
	return "unset"
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n") + "\n"
}
