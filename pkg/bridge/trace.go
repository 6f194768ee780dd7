package bridge

import "time"

// phases times the steps of one call for the NODEBRIDGE_TRACE mode of cmd:
// each done logs the step and the time since the previous one.
type phases struct {
	logf func(format string, args ...any)
	last time.Time
}

func (h *Host) phases() *phases {
	return &phases{logf: h.Logf, last: time.Now()}
}

func (p *phases) done(step string) {
	if p.logf == nil {
		return
	}
	now := time.Now()
	p.logf("phase %-10s %6d µs", step, now.Sub(p.last).Microseconds())
	p.last = now
}
