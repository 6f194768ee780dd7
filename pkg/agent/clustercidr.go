package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"
)

// Where the cluster CIDRs are read when no --cluster-cidr is given: the
// ClusterConfiguration kubeadm keeps in the cluster.
const (
	kubeadmNamespace = "kube-system"
	kubeadmConfigMap = "kubeadm-config"
	kubeadmKey       = "ClusterConfiguration"
	podSubnetField   = "ConfigMap " + kubeadmNamespace + "/" + kubeadmConfigMap + " " + kubeadmKey + " networking.podSubnet"
)

// apiTimeout bounds each API call the reconcile loop makes itself, so a
// stalled API server delays a pass but never stops the loop.
const apiTimeout = 10 * time.Second

// errClusterCIDRUnknown: the agent routes nothing, writes nothing and is
// not ready until it knows the cluster CIDRs.
var errClusterCIDRUnknown = errors.New("cluster CIDR unknown")

// clusterCIDRs holds the cluster CIDRs: the flags', else kubeadm's once
// read. They are never guessed from the Nodes: one odd podCIDR would widen
// a guess to the whole address space.
type clusterCIDRs struct {
	known    []netip.Prefix
	discover func(ctx context.Context) ([]netip.Prefix, error) // nil: flags only
}

// get returns the cluster CIDRs, reading them from the cluster while they
// are unknown: the loop's retries and resyncs try again.
func (c *clusterCIDRs) get(ctx context.Context) ([]netip.Prefix, error) {
	if len(c.known) > 0 {
		return c.known, nil
	}
	if c.discover == nil {
		return nil, fmt.Errorf("%w: no --cluster-cidr given", errClusterCIDRUnknown)
	}
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	cidrs, err := c.discover(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w (no --cluster-cidr given): %w", errClusterCIDRUnknown, err)
	}
	c.known = cidrs
	return cidrs, nil
}

// source says where the known cluster CIDRs came from, for the log.
func (c *clusterCIDRs) source() string {
	if c.discover == nil {
		return "--cluster-cidr"
	}
	return podSubnetField
}

// discoverClusterCIDRs reads networking.podSubnet from kubeadm's
// ClusterConfiguration. Equivalent to:
// kubectl -n kube-system get configmap kubeadm-config -o jsonpath='{.data.ClusterConfiguration}'
func discoverClusterCIDRs(ctx context.Context, client kubernetes.Interface) ([]netip.Prefix, error) {
	cm, err := client.CoreV1().ConfigMaps(kubeadmNamespace).Get(ctx, kubeadmConfigMap, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get ConfigMap %s/%s: %w", kubeadmNamespace, kubeadmConfigMap, err)
	}
	text, ok := cm.Data[kubeadmKey]
	if !ok {
		return nil, fmt.Errorf("ConfigMap %s/%s: no key %s", kubeadmNamespace, kubeadmConfigMap, kubeadmKey)
	}
	return parsePodSubnet(text)
}

// parsePodSubnet reads networking.podSubnet of a ClusterConfiguration: one
// prefix, or one per family separated by a comma. It refuses what
// --cluster-cidr refuses.
func parsePodSubnet(text string) ([]netip.Prefix, error) {
	var cc struct {
		Networking struct {
			PodSubnet string `json:"podSubnet"`
		} `json:"networking"`
	}
	if err := yaml.Unmarshal([]byte(text), &cc); err != nil {
		return nil, fmt.Errorf("decode %s: %w", strings.TrimSuffix(podSubnetField, " networking.podSubnet"), err)
	}
	if strings.TrimSpace(cc.Networking.PodSubnet) == "" {
		return nil, fmt.Errorf("%s: empty", podSubnetField)
	}
	var out []netip.Prefix
	var errs []error
	for _, s := range strings.Split(cc.Networking.PodSubnet, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", podSubnetField, s, err))
			continue
		}
		out = append(out, p.Masked())
	}
	errs = append(errs, checkClusterCIDRs(podSubnetField, out))
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}
