package agent

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
)

// WrapTransport returns a wrapper for the API client's transport that
// counts its requests into m and logs when the API server becomes
// unreachable and reachable again (see countingTransport).
func (m *Metrics) WrapTransport(log *slog.Logger) func(http.RoundTripper) http.RoundTripper {
	return func(rt http.RoundTripper) http.RoundTripper {
		return countingTransport{rt: rt, m: m, log: log, down: new(atomic.Bool)}
	}
}

// countingTransport counts the requests sent to the API server and the
// failed ones (nodebridge_agent_api_requests_total, _api_errors_total), and
// logs when the API server becomes unreachable and reachable again: the
// reflector retries a refused watch silently.
type countingTransport struct {
	rt   http.RoundTripper
	m    *Metrics
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
	t.m.update(func(m *Metrics) {
		m.apiRequests++
		if failed {
			m.apiErrors++
		}
	})
	t.logState(failed, r, resp, err)
	return resp, err
}
