package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// proc is a long-running program the cluster started, its stdout and stderr
// appended to a log file.
type proc struct {
	name    string // for messages: "kubelet node-1"
	logFile string
	cmd     *exec.Cmd
	done    chan struct{} // closed when Wait returned
	err     error         // Wait's error, set before done closes
}

// startProc runs argv with its output appended to logFile. The wrappers in
// front of a program (ip netns exec, unshare, nsenter) exec it in place, so
// the pid is the program's own.
func startProc(name, logFile string, argv ...string) (*proc, error) {
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log of %s: %w", name, err)
	}
	defer f.Close() // the child holds its own copy of the descriptor
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = "/"
	// Its own process group, so a terminal's ^C reaches only the owner,
	// which then stops everything in order; and killed if the owner dies
	// first (a test binary timing out), so no kubelet outlives it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, logFile: logFile, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// pid is the process id, while the process lives.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited tells whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, SIGKILL after grace, and waits for the end. Whatever
// the process does once signalled is no error (some servers exit 1 on
// SIGTERM); an earlier exit, a crash, is.
func (p *proc) stop(grace time.Duration) error {
	if p == nil {
		return nil
	}
	if p.exited() {
		if p.err != nil {
			return fmt.Errorf("%s exited before it was stopped: %w", p.name, p.err)
		}
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM) // an error means it just exited: Wait tells
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill() // as above
		<-p.done
	}
	return nil
}

// alive returns an error naming the process and its log once it has
// exited, for the waits that would otherwise run into their deadline.
func (p *proc) alive() error {
	if p == nil || !p.exited() {
		return nil
	}
	return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, p.logTail(20))
}

// logTail is the end of the process's log, for a failure message.
func (p *proc) logTail(n int) string {
	if p == nil {
		return "(not started)"
	}
	b, err := os.ReadFile(p.logFile)
	if err != nil {
		return fmt.Sprintf("(read %s: %v)", p.logFile, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return fmt.Sprintf("--- %s (%s), last lines:\n%s\n", p.name, p.logFile, strings.Join(lines, "\n"))
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
