package kubelet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/nodebridge/nodebridge/internal/lab"
)

// proc is a long-running program the cluster started (see
// lab.StartProcess), with the cluster's way of stopping it.
type proc struct{ *lab.Process }

// startProc runs argv with its output appended to logFile.
func startProc(name, logFile string, argv ...string) (*proc, error) {
	p, err := lab.StartProcess(name, logFile, nil, argv...)
	if err != nil {
		return nil, err
	}
	return &proc{p}, nil
}

// pid is the process id, while the process lives.
func (p *proc) pid() int { return p.Pid() }

// exited tells whether the process has ended.
func (p *proc) exited() bool {
	done, _ := p.Exited()
	return done
}

// stop sends SIGTERM, SIGKILL after grace, and waits for the end. Whatever
// the process does once signalled is no error (some servers exit 1 on
// SIGTERM); an earlier exit, a crash, is.
func (p *proc) stop(grace time.Duration) error {
	if p == nil {
		return nil
	}
	if done, err := p.Exited(); done {
		if err != nil {
			return fmt.Errorf("%s exited before it was stopped: %w", p.Name, err)
		}
		return nil
	}
	_ = p.Stop(grace) // its exit status once signalled is of no interest, as above
	return nil
}

// alive returns an error naming the process and its log once it has
// exited, for the waits that would otherwise run into their deadline.
func (p *proc) alive() error {
	if p == nil {
		return nil
	}
	if done, err := p.Exited(); done {
		return fmt.Errorf("%s exited: %v\n%s", p.Name, err, p.logTail(20))
	}
	return nil
}

// logTail is the end of the process's log, for a failure message.
func (p *proc) logTail(n int) string {
	if p == nil {
		return "(not started)"
	}
	b, err := os.ReadFile(p.LogFile)
	if err != nil {
		return fmt.Sprintf("(read %s: %v)", p.LogFile, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return fmt.Sprintf("--- %s (%s), last lines:\n%s\n", p.Name, p.LogFile, strings.Join(lines, "\n"))
}

// run runs argv to completion and returns its combined output, with argv
// in the error.
func run(ctx context.Context, argv ...string) (string, error) {
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, out)
	}
	return string(out), nil
}

// poll calls f every interval until it returns nil, an error made by
// permanent, or ctx ends; the error then names f's last failure.
func poll(ctx context.Context, interval time.Duration, f func() error) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		err := f()
		var perm permanentError
		if err == nil || errors.As(err, &perm) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// permanentError ends a poll at once: waiting longer cannot help.
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

// permanent marks err as the end of a poll.
func permanent(err error) error { return permanentError{err} }
