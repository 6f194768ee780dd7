package kubelet

import (
	"fmt"
	"os"
	"path/filepath"
)

// kubeletConfig is the node's KubeletConfiguration, shaped by this machine
// (cgroup v1, no CAP_SYS_RESOURCE, the machine not ours to change):
// cgroupfs without per-QoS cgroups or node-allocatable enforcement, no swap
// or local-storage checks, image GC off (the local image must stay: it
// cannot be pulled again) and eviction only near real exhaustion. The API
// server reaches the kubelet for exec and logs without a client
// certificate, so the kubelet lets anonymous requests in: it listens only
// on the lab's underlay.
func kubeletConfig(nodeIP, clusterDNS string) string {
	dns := ""
	if clusterDNS != "" {
		dns = fmt.Sprintf("clusterDNS: [%q]\nclusterDomain: cluster.local\n", clusterDNS)
	}
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %q
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
containerRuntimeEndpoint: unix://%s
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: ["none"]
failSwapOn: false
localStorageCapacityIsolation: true
protectKernelDefaults: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: "1Mi"
  nodefs.available: "1%%"
  nodefs.inodesFree: "1%%"
  imagefs.available: "1%%"
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
serializeImagePulls: false
resolvConf: /etc/resolv.conf
nodeStatusReportFrequency: 10s
%s`, nodeIP, containerdSock, dns)
}

// startKubelet writes the node's kubelet config and starts the kubelet in
// the node's namespaces, registering the Node as n.Name with the node IP on
// the underlay, and clusterDNS (if not empty) as its pods' nameserver.
func (n *Node) startKubelet(kubeconfig, kubeletBin, clusterDNS string) error {
	conf := filepath.Join(n.Dir, "kubelet.yaml")
	if err := os.WriteFile(conf, []byte(kubeletConfig(n.IP.String(), clusterDNS)), 0o644); err != nil {
		return fmt.Errorf("write kubelet config of %s: %w", n.Name, err)
	}
	var err error
	n.kubelet, err = startProc("kubelet "+n.Name, filepath.Join(n.Dir, "logs", "kubelet.log"),
		append(enter(n.holder), kubeletBin, "--config="+conf, "--kubeconfig="+kubeconfig,
			"--hostname-override="+n.Name, "--node-ip="+n.IP.String(), "--v=1")...)
	return err
}
