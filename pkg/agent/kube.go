package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// restConfig loads the client config: the --kubeconfig file, else
// in-cluster, else $KUBECONFIG. QPS and Burst are raised modestly: the agent
// makes few requests, but a relist after an API server restart must not
// queue behind the client's default 5 QPS.
func restConfig(kubeconfig string, m *metrics, log *slog.Logger) (*rest.Config, error) {
	rc, err := loadConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	rc.QPS, rc.Burst = 20, 40
	rc.UserAgent = "nodebridge-agent"
	rc.ContentType = "application/vnd.kubernetes.protobuf"
	rc.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	rc.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return countingTransport{rt: rt, m: m, log: log, down: new(atomic.Bool)}
	})
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

// countingTransport counts the requests sent to the API server and the
// failed ones (nodebridge_agent_api_requests_total, _api_errors_total), and
// logs when the API server becomes unreachable and reachable again: the
// reflector retries a refused watch silently.
type countingTransport struct {
	rt   http.RoundTripper
	m    *metrics
	log  *slog.Logger
	down *atomic.Bool // the last request failed
}

// logState logs the transitions between a failing and a working API server.
func (t countingTransport) logState(failed bool, r *http.Request, resp *http.Response, err error) {
	if t.down.Swap(failed) == failed {
		return
	}
	if !failed {
		t.log.Info("Kubernetes API reachable again")
		return
	}
	if err == nil {
		err = fmt.Errorf("HTTP %s", resp.Status)
	}
	t.log.Warn("Kubernetes API request failed; retrying with backoff", "method", r.Method, "path", r.URL.Path, "err", err)
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(r)
	// 410 Gone is a watch resuming from an expired version: routine.
	failed := err != nil || (resp.StatusCode >= 400 && resp.StatusCode != http.StatusGone)
	t.m.update(func(m *metrics) {
		m.apiRequests++
		if failed {
			m.apiErrors++
		}
	})
	t.logState(failed, r, resp, err)
	return resp, err
}
