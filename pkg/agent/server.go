package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// readiness is what /readyz answers: ready, or the reason why not.
type readiness struct {
	mu     sync.Mutex
	ready  bool
	reason string
}

// set records the state; it reports whether it changed.
func (r *readiness) set(ready bool, reason string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	changed := r.ready != ready || r.reason != reason
	r.ready, r.reason = ready, reason
	return changed
}

func (r *readiness) get() (bool, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ready, r.reason
}

// newMux serves /healthz (the reconcile loop still completes passes),
// /readyz and /metrics, the latter from reg.
func newMux(rd *readiness, live *liveness, reg prometheus.Gatherer, log *slog.Logger) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if err := live.check(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not live: "+err.Error())
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, reason := rd.get()
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready: "+reason)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError, // a failed collector should not hide the others
	}))
	return mux
}

// serve listens on addr and serves h until ctx ends, then shuts down,
// giving open requests a second. A listen failure is returned at once.
func serve(ctx context.Context, addr string, h http.Handler, log *slog.Logger) (wait func() error, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on metrics-addr %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		done <- err
	}()
	log.Info("serving /healthz, /readyz and /metrics", "addr", ln.Addr().String())
	return func() error {
		select {
		case <-ctx.Done():
		case err := <-done:
			if err != nil {
				return fmt.Errorf("serve %s: %w", addr, err)
			}
			return nil
		}
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err := srv.Shutdown(sctx)
		return errors.Join(err, <-done)
	}, nil
}
