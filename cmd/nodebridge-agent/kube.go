package main

import (
	"errors"
	"fmt"
	"os"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// restConfig loads the client config: the --kubeconfig file, else
// in-cluster, else $KUBECONFIG. QPS and Burst are raised modestly: the agent
// makes few requests, but a relist after an API server restart must not
// queue behind the client's default 5 QPS.
func restConfig(kubeconfig string) (*rest.Config, error) {
	rc, err := loadConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	rc.QPS, rc.Burst = 20, 40
	rc.UserAgent = "nodebridge-agent"
	rc.ContentType = "application/vnd.kubernetes.protobuf"
	rc.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	return rc, nil
}

// loadConfig picks the kubeconfig source as an operator expects.
func loadConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
		}
		return rc, nil
	}
	rc, err := rest.InClusterConfig()
	if err == nil {
		return rc, nil
	}
	env := os.Getenv("KUBECONFIG")
	if !errors.Is(err, rest.ErrNotInCluster) || env == "" {
		return nil, fmt.Errorf("load in-cluster config (no --kubeconfig, no $KUBECONFIG): %w", err)
	}
	// The default loading rules read the files listed in $KUBECONFIG.
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rc, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig from $KUBECONFIG %s: %w", env, err)
	}
	return rc, nil
}
