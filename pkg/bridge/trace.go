package bridge

import "time"

// phases times the steps of one call for the NODEBRIDGE_TRACE mode of cmd:
// each done logs the step and the time since the previous one.
type phases struct {
	logf func(format string, args ...any)
	last time.Time
}

func (c *Config) phases() *phases {
	return &phases{logf: c.Logf, last: time.Now()}
}

func (p *phases) done(step string) {
	if p.logf == nil {
		return
	}
	now := time.Now()
	p.logf("phase %-10s %6d µs", step, now.Sub(p.last).Microseconds())
	p.last = now
}

// logf writes a diagnostic to c.Logf, if cmd set one.
func (c *Config) logf(format string, args ...any) {
	if c.Logf != nil {
		c.Logf(format, args...)
	}
}
