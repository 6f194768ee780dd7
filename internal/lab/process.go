package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Process is a long-running program the lab (or the kubelet cluster built
// on it) started, its stdout and stderr appended to a log file.
type Process struct {
	Name    string // for messages: "etcd", "agent lab-node-1"
	LogFile string
	cmd     *exec.Cmd
	done    chan struct{} // closed when Wait returned
	err     error         // Wait's error, set before done closes
}

// startProcess runs argv inside netns (ip netns exec execs the program in
// place, so the pid is the program's own).
func startProcess(name, netns, logFile string, env []string, argv ...string) (*Process, error) {
	return StartProcess(name, logFile, env, append([]string{"ip", "netns", "exec", netns}, argv...)...)
}

// StartProcess runs argv from / with env added to this process's, its
// output appended to logFile. The wrappers a caller puts in front of a
// program (ip netns exec, unshare, nsenter) exec it in place, so the pid is
// the program's own.
func StartProcess(name, logFile string, env []string, argv ...string) (*Process, error) {
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log of %s: %w", name, err)
	}
	defer f.Close() // the child holds its own copy of the descriptor
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = "/"
	// Its own process group, so a terminal's ^C reaches only the owner,
	// which then stops every process in order; and killed if the owner dies
	// first (a test binary killed on timeout), so no API server, agent or
	// kubelet outlives it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{Name: name, LogFile: logFile, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Args is the argv the process was started with, to start it again.
func (p *Process) Args() []string { return p.cmd.Args }

// Exited tells whether the process has ended, and with what.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Kill sends SIGKILL and waits for the process to end: a crash, as far as
// the process can tell.
func (p *Process) Kill() {
	_ = p.signalAndWait(syscall.SIGKILL, 0) // a kill ends it; how it ended is of no interest
}

// Stop sends SIGTERM, and SIGKILL after grace, then waits for the end. It
// returns an error if the process exited non-zero, before or after the
// signal.
func (p *Process) Stop(grace time.Duration) error {
	return p.signalAndWait(syscall.SIGTERM, grace)
}

func (p *Process) signalAndWait(sig syscall.Signal, grace time.Duration) error {
	if done, _ := p.Exited(); done {
		return p.exitError()
	}
	// An error here means it just exited: Wait reports that below.
	_ = p.cmd.Process.Signal(sig)
	if grace > 0 {
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = p.cmd.Process.Kill() // same as above
		}
	}
	<-p.done
	return p.exitError()
}

// exitError is nil for an exit 0 or an end by signal (ours, or an earlier
// Kill), else the exit status.
func (p *Process) exitError() error {
	var ee *exec.ExitError
	if errors.As(p.err, &ee) && ee.Sys().(syscall.WaitStatus).Signaled() {
		return nil
	}
	if p.err != nil {
		return fmt.Errorf("%s: %w", p.Name, p.err)
	}
	return nil
}

// Logs returns the process's log, for a failure message.
func (p *Process) Logs() string {
	b, err := os.ReadFile(p.LogFile)
	if err != nil {
		return fmt.Sprintf("(read %s: %v)", p.LogFile, err)
	}
	return string(b)
}

// run runs argv to completion and returns its combined output, with argv in
// the error.
func run(ctx context.Context, argv ...string) (string, error) {
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%v: %w: %s", argv, err, out)
	}
	return string(out), nil
}

// RepoRoot finds the module root (the dir holding go.mod) from the working
// dir up, so tests in any package, the demos and the benchmarks find
// scripts/ and deploy/.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("get working dir: %w", err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod in %s or above", dir)
		}
	}
}
