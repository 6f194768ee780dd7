package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/nftables"
	"k8s.io/apimachinery/pkg/types"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodebridge/nodebridge/internal/lab"
	"github.com/nodebridge/nodebridge/pkg/rules"
)

// change is one kind of change measured: do opens its port to the client,
// undo closes it again.
type change struct {
	name     string
	port     int
	do, undo func(context.Context) error
}

func (e *env) changes() []change {
	patchPod := func(labels string) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := e.cs.CoreV1().Pods(clientNS).Patch(ctx, "probe-client", types.MergePatchType,
				[]byte(`{"metadata":{"labels":{"role":`+labels+`}}}`), metav1.PatchOptions{})
			return err
		}
	}
	patchNS := func(labels string) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := e.cs.CoreV1().Namespaces().Patch(ctx, clientNS, types.MergePatchType,
				[]byte(`{"metadata":{"labels":{"probe":`+labels+`}}}`), metav1.PatchOptions{})
			return err
		}
	}
	pols := e.cs.NetworkingV1().NetworkPolicies(serverNS)
	return []change{
		{"Pod labels", portPod, patchPod(`"probe-client"`), patchPod(`null`)},
		{"Namespace labels", portNamespace, patchNS(`"yes"`), patchNS(`null`)},
		{"NetworkPolicy", portPolicy,
			func(ctx context.Context) error {
				_, err := pols.Create(ctx, probePolicy(), metav1.CreateOptions{})
				return err
			},
			func(ctx context.Context) error { return pols.Delete(ctx, probePolicy().Name, metav1.DeleteOptions{}) }},
	}
}

// measure creates the world, waits for the agent to enforce it, reads the
// objects and memory, then times each change both ways, rounds times.
func (e *env) measure(ctx context.Context, r *report) error {
	w := newWorld(e.o.namespaces, e.o.perNS, e.client.IPs[0], e.server.IPs[0])
	logf("creating %d namespaces, %d pods and %d policies", len(w.namespaces), len(w.pods), len(w.policies))
	start := time.Now()
	if err := w.create(ctx, e.cs, 32); err != nil {
		return err
	}
	r.CreateSeconds = time.Since(start).Seconds()
	logf("waiting for the agent to write all %d policies", len(w.policies))
	if err := e.waitPolicies(ctx, len(w.policies)); err != nil {
		return err
	}
	r.ConvergeSeconds = time.Since(start).Seconds()
	// Nothing open yet: each probe port starts dropped.
	for _, c := range e.changes() {
		if _, err := e.enforced(ctx, c.port, false, func(context.Context) error { return nil }); err != nil {
			return fmt.Errorf("before any change: %w", err)
		}
	}
	var err error
	if r.Agent, err = e.agentFigures(ctx); err != nil {
		return err
	}
	if r.Kernel, err = e.kernelObjects(); err != nil {
		return err
	}
	before, err := e.metrics(ctx)
	if err != nil {
		return err
	}
	for round := range e.o.rounds {
		for _, c := range e.changes() {
			open, err := e.enforced(ctx, c.port, true, c.do)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", round+1, c.name, err)
			}
			closed, err := e.enforced(ctx, c.port, false, c.undo)
			if err != nil {
				return fmt.Errorf("round %d, %s undone: %w", round+1, c.name, err)
			}
			r.add(c.name, open, closed)
		}
		logf("round %d of %d done", round+1, e.o.rounds)
	}
	after, err := e.metrics(ctx)
	if err != nil {
		return err
	}
	const requests = "nodebridge_agent_api_requests_total"
	r.APIRequests = int(metricValue(after, requests, "") - metricValue(before, requests, ""))
	if r.Memory, err = readMemory(e.node.Agent().Pid()); err != nil {
		return err
	}
	return e.measureConnects(ctx, w, r)
}

// measureConnects times new connections through the server's class chain
// with the full table, then with a table holding only the server's
// default deny and the policy opening the port: a packet's cost should
// not grow with the pods and policies.
func (e *env) measureConnects(ctx context.Context, w *world, r *report) error {
	open := e.changes()[2]
	if _, err := e.enforced(ctx, open.port, true, open.do); err != nil {
		return fmt.Errorf("open port %d for the connection timing: %w", open.port, err)
	}
	logf("timing %d connections with the full table", e.o.connects)
	full, err := e.connectTimes(ctx, open.port, e.o.connects)
	if err != nil {
		return err
	}
	logf("deleting every pod and policy but the probes' and the server's default deny")
	if err := w.shrink(ctx, e.cs, 32); err != nil {
		return err
	}
	if err := e.waitPolicies(ctx, 2); err != nil {
		return err
	}
	if r.SmallKernel, err = e.kernelObjects(); err != nil {
		return err
	}
	small, err := e.connectTimes(ctx, open.port, e.o.connects)
	if err != nil {
		return err
	}
	r.Connect = connectFigures{N: e.o.connects, FullP50us: median(full), SmallP50us: median(small)}
	r.Connect.Ratio = r.Connect.FullP50us / r.Connect.SmallP50us
	return nil
}

// connectTimes opens and closes n connections from the client to the
// server's port one after the other, timing each, in µs.
func (e *env) connectTimes(ctx context.Context, port, n int) ([]float64, error) {
	dial := lab.Dialer(e.client.Netns)
	addr := net.JoinHostPort(e.server.IPs[0].String(), strconv.Itoa(port))
	out := make([]float64, 0, n)
	for range n {
		start := time.Now()
		c, err := dial(ctx, "tcp4", addr)
		took := time.Since(start)
		if err != nil {
			return nil, fmt.Errorf("time connections to %s: %w", addr, err)
		}
		c.Close()
		out = append(out, float64(took.Nanoseconds())/1000)
	}
	return out, nil
}

// waitPolicies polls the agent's metrics until its last policy write
// knew n policies and the writes stopped changing for a second.
func (e *env) waitPolicies(ctx context.Context, n int) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var last float64 = -1
	var since time.Time
	for {
		body, err := e.metrics(ctx)
		if err == nil && metricValue(body, "nodebridge_agent_network_policies", "") == float64(n) {
			writes := metricValue(body, "nodebridge_agent_policy_writes_total", "")
			if writes != last {
				last, since = writes, time.Now()
			} else if time.Since(since) > time.Second {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the agent did not write %d policies: %w (last error %v)", n, ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// metrics fetches the agent's /metrics.
func (e *env) metrics(ctx context.Context) (string, error) {
	code, body, err := e.node.Get(ctx, "/metrics")
	if err == nil && code != 200 {
		err = fmt.Errorf("get /metrics of the agent: HTTP %d", code)
	}
	return body, err
}

// metricValue is the value of the sample of name whose labels hold
// label (empty: the unlabelled sample); -1 when absent.
func metricValue(body, name, label string) float64 {
	for line := range strings.Lines(body) {
		key, val, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || strings.HasPrefix(key, "#") {
			continue
		}
		metric, labels, _ := strings.Cut(key, "{")
		if metric != name || (label == "" && labels != "") || !strings.Contains(labels, label) {
			continue
		}
		if v, err := strconv.ParseFloat(val, 64); err == nil {
			return v
		}
	}
	return -1
}

// agentFigures reads the agent's own account of the policy it wrote.
func (e *env) agentFigures(ctx context.Context) (agentFigures, error) {
	body, err := e.metrics(ctx)
	if err != nil {
		return agentFigures{}, err
	}
	return agentFigures{
		WriteMs:  1000 * metricValue(body, "nodebridge_agent_policy_sync_last_duration_seconds", ""),
		Isolated: int(metricValue(body, "nodebridge_agent_policy_isolated_pods", "")),
		Rules:    int(metricValue(body, "nodebridge_agent_policy_rules", "")),
		Elements: int(metricValue(body, "nodebridge_agent_policy_kernel_objects", `kind="elements"`)),
	}, nil
}

// kernelObjects counts what the node's kernel holds in the policy table,
// read through netlink in the node's netns.
// Equivalent to: ip netns exec <node> nft list table inet nodebridge-policy
func (e *env) kernelObjects() (kernelObjects, error) {
	var k kernelObjects
	f, err := os.Open("/var/run/netns/" + e.node.Netns)
	if err != nil {
		return k, err
	}
	defer f.Close()
	c, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		return k, fmt.Errorf("nftables in %s: %w", e.node.Netns, err)
	}
	t := &nftables.Table{Name: rules.NFTPolicyTable, Family: nftables.TableFamilyINet}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return k, fmt.Errorf("list chains: %w", err)
	}
	for _, ch := range chains {
		if ch.Table.Name != t.Name {
			continue
		}
		k.Chains++
		rs, err := c.GetRules(t, ch)
		if err != nil {
			return k, fmt.Errorf("rules of chain %s: %w", ch.Name, err)
		}
		k.Rules += len(rs)
	}
	sets, err := c.GetSets(t)
	if err != nil {
		return k, fmt.Errorf("sets of table %s: %w", t.Name, err)
	}
	k.Sets = len(sets)
	for _, s := range sets {
		es, err := c.GetSetElements(s)
		if err != nil {
			return k, fmt.Errorf("elements of set %s: %w", s.Name, err)
		}
		k.Elements += len(es)
		k.LargestSet = max(k.LargestSet, len(es))
	}
	if k.Chains == 0 {
		return k, fmt.Errorf("no table inet %s in %s", t.Name, e.node.Netns)
	}
	return k, nil
}

// readMemory reads VmRSS and VmHWM of pid.
func readMemory(pid int) (memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, fmt.Errorf("read status of the agent, pid %d: %w", pid, err)
	}
	var m memory
	for line := range strings.Lines(string(b)) {
		key, val, _ := strings.Cut(line, ":")
		f := strings.Fields(val)
		if len(f) == 2 && slices.Contains([]string{"VmRSS", "VmHWM"}, key) {
			n, _ := strconv.Atoi(f[0])
			if key == "VmRSS" {
				m.RSSMB = float64(n) / 1024
			} else {
				m.PeakMB = float64(n) / 1024
			}
		}
	}
	return m, nil
}
