package agent

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// fakeClock is a settable now().
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestLiveness(t *testing.T) {
	for _, tc := range []struct {
		name   string
		resync time.Duration
		steps  func(l *liveness, c *fakeClock)
		want   string // "" live
	}{
		{"starting, within the grace", 30 * time.Second, func(l *liveness, c *fakeClock) { c.advance(4 * time.Minute) }, ""},
		{"Node list never came", 30 * time.Second, func(l *liveness, c *fakeClock) { c.advance(5*time.Minute + time.Second) },
			"Node list not in 5m1s after start"},
		{"loop started, first pass running", 30 * time.Second, func(l *liveness, c *fakeClock) {
			c.advance(10 * time.Minute) // a long wait for the Node list is over
			l.loopStarted()
			c.advance(90 * time.Second)
		}, ""},
		{"loop started, no pass", 30 * time.Second, func(l *liveness, c *fakeClock) {
			l.loopStarted()
			c.advance(91 * time.Second)
		}, "completed no pass (limit 1m30s)"},
		{"passes keep coming", 30 * time.Second, func(l *liveness, c *fakeClock) {
			l.loopStarted()
			for range 10 {
				c.advance(80 * time.Second)
				l.passed()
			}
			c.advance(80 * time.Second)
		}, ""},
		{"passes stopped", 30 * time.Second, func(l *liveness, c *fakeClock) {
			l.loopStarted()
			l.passed()
			c.advance(2 * time.Minute)
		}, "no reconcile pass completed for 2m0s (limit 1m30s)"},
		{"short resync: at least a minute", time.Second, func(l *liveness, c *fakeClock) {
			l.loopStarted()
			l.passed()
			c.advance(59 * time.Second)
		}, ""},
		{"short resync: a minute without a pass", time.Second, func(l *liveness, c *fakeClock) {
			l.loopStarted()
			l.passed()
			c.advance(61 * time.Second)
		}, "(limit 1m0s)"},
		{"long resync: grace follows", time.Hour, func(l *liveness, c *fakeClock) { c.advance(2 * time.Hour) }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &fakeClock{t: time.Unix(1_700_000_000, 0)}
			l := newLiveness(tc.resync, c.now)
			tc.steps(l, c)
			err := l.check()
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// /healthz answers 503 with the reason once the loop stops passing.
func TestHealthz(t *testing.T) {
	c := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	l := newLiveness(30*time.Second, c.now)
	srv := httptest.NewServer(newMux(&readiness{}, l, newRegistry(&Metrics{}, "test"), discard()))
	defer srv.Close()
	l.loopStarted()
	l.passed()
	if code, body := get(t, srv.URL+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz after a pass: %d %q", code, body)
	}
	c.advance(time.Hour)
	if code, body := get(t, srv.URL+"/healthz"); code != 503 || !strings.Contains(body, "no reconcile pass completed") {
		t.Errorf("/healthz an hour after the last pass: %d %q", code, body)
	}
}
