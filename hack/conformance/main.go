// Command conformance is `make conformance`: the upstream Kubernetes
// sig-network e2e specs (e2e.test of v1.36.3, run by ginkgo) against the
// project's kubelet cluster (package internal/lab/kubelet) with nodebridge
// installed from deploy/nodebridge.yaml, kube-proxy on every node and
// CoreDNS. The specs run are those of testdata/conformance/focus.txt less
// those of testdata/conformance/skip.txt, each skip with its reason.
//
// For each kube-proxy mode it starts a cluster, runs the suite -runs times
// in a row on it, and takes it down; with -plugins nodebridge,reference it
// does the same with the reference bridge + host-local in nodebridge's place
// (static routes and FORWARD accepts between the nodes, as the agent would
// add). Each run's JUnit file is kept
// under -out; the summary (passed, failed and skipped, by name) is printed
// last and written to -out/summary.xml as JUnit. It exits non-zero if any
// nodebridge run has a failure.
//
// It needs root, and leaves the machine as it found it: every change is
// inside netns and mount namespaces it makes, every file in one temp dir it
// removes (but -out), and it compares the machine's network before and
// after.
//
//	go run ./hack/conformance [-modes iptables,nftables] [-runs 2] [-plugins nodebridge,reference] [-parallel 4]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/nodebridge/nodebridge/internal/lab"
	"github.com/nodebridge/nodebridge/internal/lab/kubelet"
	"github.com/nodebridge/nodebridge/internal/testenv"
)

// config is what the flags say.
type config struct {
	modes    []string // kube-proxy modes
	runs     int      // suite runs per cluster
	plugins  []string // nodebridge, reference (the baseline)
	parallel int      // ginkgo processes
	out      string   // JUnit files and the summary
	focus    string   // file of focus patterns
	skip     string   // file of skip patterns, each with a reason
	timeout  time.Duration
}

func main() {
	var c config
	modes := flag.String("modes", "iptables,nftables", "kube-proxy modes to run, comma-separated")
	flag.IntVar(&c.runs, "runs", 2, "suite runs in a row per cluster")
	plugins := flag.String("plugins", pluginNodebridge, "CNI plugins to judge, comma-separated: nodebridge, reference (bridge + host-local v1.9.1, the baseline)")
	flag.IntVar(&c.parallel, "parallel", 4, "ginkgo processes running specs at once")
	flag.StringVar(&c.out, "out", "_out/conformance", "dir of the JUnit files and the summary")
	flag.StringVar(&c.focus, "focus", "testdata/conformance/focus.txt", "file of the specs to run (regexps, one a line)")
	flag.StringVar(&c.skip, "skip", "testdata/conformance/skip.txt", "file of the specs not to run (regexp, then # reason)")
	flag.DurationVar(&c.timeout, "timeout", 50*time.Minute, "longest one suite run may take")
	flag.Parse()
	c.modes, c.plugins = strings.Split(*modes, ","), strings.Split(*plugins, ",")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, c)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("needs root: it creates network and mount namespaces")
	}
	for _, m := range c.modes {
		if m != "iptables" && m != "nftables" {
			return fmt.Errorf("-modes: %q: want iptables or nftables", m)
		}
	}
	for _, p := range c.plugins {
		if p != pluginNodebridge && p != pluginReference {
			return fmt.Errorf("-plugins: %q: want nodebridge or reference", p)
		}
	}
	if c.runs < 1 {
		return fmt.Errorf("-runs %d: want 1 or more", c.runs)
	}
	sel, err := readSelection(c.focus, c.skip)
	if err != nil {
		return err
	}
	// ginkgo runs in each run's dir: e2e.test must get absolute paths.
	if c.out, err = filepath.Abs(c.out); err != nil {
		return fmt.Errorf("-out %s: %w", c.out, err)
	}
	prefix := fmt.Sprintf("nbc%x-", os.Getpid())
	before := testenv.State(prefix, testenv.Kubelet, hostname)
	defer func() {
		if diff := testenv.Diff(before, testenv.State(prefix, testenv.Kubelet, hostname)); diff != "" {
			err = errors.Join(err, fmt.Errorf("the machine's state changed:\n%s", diff))
		}
	}()
	dir, err := os.MkdirTemp("", "nodebridge-conformance-")
	if err != nil {
		return fmt.Errorf("make temp dir: %w", err)
	}
	defer func() { err = errors.Join(err, os.RemoveAll(dir)) }()
	b, err := build(ctx, dir)
	if err != nil {
		return err
	}
	var results []result
	for _, plugin := range c.plugins {
		for _, mode := range c.modes {
			rs, err := suite(ctx, c, b, sel, setup{plugin: plugin, mode: mode, prefix: prefix, dir: dir})
			results = append(results, rs...)
			if err != nil {
				printSummary(os.Stdout, results)
				return err
			}
		}
	}
	printSummary(os.Stdout, results)
	if err := writeSummaryJUnit(filepath.Join(c.out, "summary.xml"), results); err != nil {
		return err
	}
	for _, r := range results {
		if r.plugin == pluginNodebridge && (len(r.failed) > 0 || r.err != nil) {
			return fmt.Errorf("nodebridge, kube-proxy %s, run %d: %d failed", r.mode, r.run, len(r.failed))
		}
	}
	return nil
}

// hostname is the machine's, which the nodes' UTS namespaces must leave be.
func hostname() []string {
	h, err := os.Hostname()
	if err != nil {
		return []string{"hostname: " + err.Error()}
	}
	return []string{"hostname " + h}
}

// The plugins a run can judge.
const (
	pluginNodebridge = "nodebridge"
	pluginReference  = "reference"
)

// setup is one cluster's: which plugin, which kube-proxy mode.
type setup struct {
	plugin, mode, prefix, dir string
}

// suite starts a cluster for s, runs the suite c.runs times on it, and
// takes it down.
func suite(ctx context.Context, c config, b *built, sel selection, s setup) (_ []result, err error) {
	name := s.plugin + "-" + s.mode
	o := kubelet.Options{Prefix: s.prefix, Dir: filepath.Join(s.dir, name), Nodes: 3, K8sBin: b.k8sBin,
		Image: b.image, Archives: []string{b.e2eImages}, KubeProxy: s.mode}
	if s.plugin == pluginReference {
		o.Reference = true
		o.CNIBinDir = filepath.Join(o.Dir, "cni-bin")
		if err := os.MkdirAll(o.CNIBinDir, 0o755); err != nil {
			return nil, fmt.Errorf("make %s: %w", o.CNIBinDir, err)
		}
		if err := kubelet.LinkReference(o.CNIBinDir, b.tools); err != nil {
			return nil, err
		}
	} else {
		o.DaemonSet = b.nodebridgeImage
		o.Archives = append(o.Archives, b.nodebridgeArchive)
	}
	t0 := time.Now()
	fmt.Printf("== %s: starting a 3-node cluster (kube-proxy %s)\n", name, s.mode)
	cl, err := kubelet.Start(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("start %s cluster: %w", name, err)
	}
	defer func() { err = errors.Join(err, cl.Close()) }()
	fmt.Printf("== %s: cluster up in %s\n", name, time.Since(t0).Round(time.Second))
	var rs []result
	for i := 1; i <= c.runs; i++ {
		out := filepath.Join(c.out, fmt.Sprintf("%s-%d", name, i))
		r := runSuite(ctx, c, cl, b, sel, out)
		r.plugin, r.mode, r.run = s.plugin, s.mode, i
		fmt.Printf("== %s run %d: %d passed, %d failed, %d skipped in %s (JUnit: %s)\n", name, i,
			len(r.passed), len(r.failed), len(r.skipped), r.took.Round(time.Second), r.junit)
		rs = append(rs, r)
		if r.err != nil {
			return rs, r.err
		}
	}
	return rs, nil
}

// built is what every cluster runs.
type built struct {
	k8sBin                             string // the k8s binaries, kube-proxy, e2e.test, ginkgo, ...
	image                              string // the lab's pause + busybox archive
	e2eImages                          string // the upstream-named e2e images
	nodebridgeImage, nodebridgeArchive string // make image's
	tools                              string // the reference plugins
}

// build makes, or takes from the cache, every binary and image.
func build(ctx context.Context, dir string) (*built, error) {
	t0 := time.Now()
	bins := []string{"kube-apiserver", "etcd", "kubelet", "kube-controller-manager", "kube-scheduler", "kubectl",
		"kube-proxy", "coredns", "agnhost", "regression-issue-74839", "e2e.test", "ginkgo"}
	k8sBin, err := lab.Binaries(ctx, bins...)
	if err != nil {
		return nil, err
	}
	b := &built{k8sBin: k8sBin, image: filepath.Join(dir, "image.tar"), e2eImages: filepath.Join(dir, "e2e-images.tar")}
	pause := filepath.Join(dir, "pause")
	if err := kubelet.BuildPause(ctx, pause); err != nil {
		return nil, err
	}
	busybox, err := testenv.FindTool("busybox")
	if err != nil {
		return nil, err
	}
	if err := kubelet.BuildImage(ctx, b.image, busybox, pause); err != nil {
		return nil, err
	}
	if err := kubelet.BuildE2EImages(ctx, b.e2eImages, kubelet.E2EImages{Agnhost: filepath.Join(k8sBin, "agnhost"),
		CoreDNS: filepath.Join(k8sBin, "coredns"), Busybox: busybox, Pause: pause,
		PorterCert: filepath.Join(k8sBin, "localhost.crt"), PorterKey: filepath.Join(k8sBin, "localhost.key"),
		Regression: filepath.Join(k8sBin, "regression-issue-74839")}); err != nil {
		return nil, err
	}
	version, err := kubelet.ImageVersion(ctx, "")
	if err != nil {
		return nil, err
	}
	im, err := kubelet.BuildNodebridgeImage(ctx, filepath.Join(dir, "images"), version)
	if err != nil {
		return nil, err
	}
	b.nodebridgeImage, b.nodebridgeArchive = im.Name, im.Archive
	bridge, err := testenv.FindTool("bridge")
	if err != nil {
		return nil, err
	}
	b.tools = filepath.Dir(bridge)
	fmt.Printf("== built (or found in the cache) in %s\n", time.Since(t0).Round(time.Second))
	return b, nil
}
