package kubelet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// controllers are kube-controller-manager and kube-scheduler, run in the
// lab netns beside the API server, as the admin, without leader election
// (there is one of each).
type controllers struct {
	manager, scheduler *proc
}

// startControllers starts both. The controller-manager allocates each
// registering Node a /24 of clusterCIDR (Nodes register without one) and
// publishes the root CA that pods' service-account volumes mount.
func startControllers(c *Cluster, kubeconfig string) (*controllers, error) {
	ca := filepath.Join(c.Dir, "ca.crt")
	if err := os.WriteFile(ca, c.Lab.AdminConfig().CAData, 0o644); err != nil {
		return nil, fmt.Errorf("write cluster CA: %w", err)
	}
	in := []string{"ip", "netns", "exec", c.Lab.Netns}
	var k controllers
	var err error
	k.manager, err = startProc("kube-controller-manager", filepath.Join(c.Dir, "kube-controller-manager.log"),
		append(in, filepath.Join(c.K8sBin, "kube-controller-manager"),
			"--kubeconfig="+kubeconfig, "--leader-elect=false", "--bind-address=127.0.0.1",
			"--allocate-node-cidrs", "--cluster-cidr="+c.ClusterCIDR.String(), "--node-cidr-mask-size=24",
			"--service-cluster-ip-range=10.96.0.0/12", "--root-ca-file="+ca,
			"--configure-cloud-routes=false", "--v=1")...)
	if err != nil {
		return nil, err
	}
	k.scheduler, err = startProc("kube-scheduler", filepath.Join(c.Dir, "kube-scheduler.log"),
		append(in, filepath.Join(c.K8sBin, "kube-scheduler"),
			"--kubeconfig="+kubeconfig, "--leader-elect=false", "--bind-address=127.0.0.1", "--v=1")...)
	if err != nil {
		return nil, errors.Join(err, k.stop())
	}
	return &k, nil
}

// stop ends the scheduler, then the controller-manager.
func (k *controllers) stop() error {
	return errors.Join(k.scheduler.stop(10*time.Second), k.manager.stop(10*time.Second))
}

// logs is the end of both logs, for a failure.
func (k *controllers) logs() string {
	return k.manager.logTail(30) + k.scheduler.logTail(20)
}
