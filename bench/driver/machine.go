package main

import (
	"bytes"
	"debug/buildinfo"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// referenceVersion is the containernetworking/plugins release compared against.
const referenceVersion = "v1.9.1"

// userHZ is the unit of /proc/stat: ticks per second, 100 on every Linux ABI.
const userHZ = 100

// busyShare is the share of the machine's CPU time, used by other processes
// during the run, above which the report warns that the figures are skewed.
const busyShare = 0.10

// machine is where the figures come from.
type machine struct {
	CPUs        int     `json:"cpus"`
	Model       string  `json:"cpu_model"`
	Kernel      string  `json:"kernel"`
	Go          string  `json:"go"`
	LoadStart   string  `json:"loadavg_start"` // 1, 5 and 15 minute load averages
	LoadEnd     string  `json:"loadavg_end"`
	OthersShare float64 `json:"cpu_share_used_by_others"` // of all CPUs over the run, by anything but the bench and its children
}

func thisMachine() machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), LoadStart: loadAvg()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for l := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.Model = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// finish notes the load at the end, and how much of the machine's CPU time
// since start went to processes other than the bench and its children.
func (m *machine) finish(start cpuSample) {
	m.LoadEnd = loadAvg()
	end := cpuNow()
	wall := end.at.Sub(start.at).Seconds() * float64(m.CPUs)
	if others := (end.busy - start.busy) - (end.ours - start.ours); wall > 0 && others > 0 {
		m.OthersShare = others / wall
	}
}

func (m *machine) busyWarning() string {
	if m.OthersShare <= busyShare {
		return ""
	}
	return fmt.Sprintf("other work (processes, kernel threads, hypervisor steal) used %.0f%% of the CPUs during the run (load average %s at start, %s at end): their work skews these figures",
		100*m.OthersShare, m.LoadStart, m.LoadEnd)
}

// cpuSample is the CPU time, in seconds, all CPUs spent busy (time stolen
// by the hypervisor included) and that the bench and its waited-for
// children used, at one moment.
type cpuSample struct {
	at         time.Time
	busy, ours float64
}

// cpuNow reads /proc/stat and getrusage; a figure it cannot read stays 0.
func cpuNow() cpuSample {
	s := cpuSample{at: time.Now()}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)                   // cpu user nice system idle iowait irq softirq steal ...
		for _, i := range []int{1, 2, 3, 6, 7, 8} { // all but idle and iowait
			if i < len(f) {
				if n, err := strconv.ParseFloat(f[i], 64); err == nil {
					s.busy += n / userHZ
				}
			}
		}
	}
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) == nil {
			s.ours += time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
		}
	}
	return s
}

// loadAvg returns the 1, 5 and 15 minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

// versionWarnings flags a reference binary that is not referenceVersion.
func versionWarnings(reference []string) []string {
	var out []string
	for _, v := range reference {
		if !strings.Contains(v, " "+referenceVersion+" ") {
			out = append(out, "not the reference "+referenceVersion+": "+v)
		}
	}
	return out
}

// versions names what a run compares: nodebridge by the line it prints
// with no CNI_COMMAND (its build version), run in a node of its own, and each
// reference binary by the module version `go install` stamped into it.
func (b *bench) versions(nodebridge string, reference ...string) (out []string, err error) {
	node, err := b.newNode()
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, b.ns.del(node)) }()
	err = inNetns(node, func() error {
		cmd := exec.Command(nodebridge)
		cmd.Env = call{}.env()
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("run %s with no CNI_COMMAND: %w: %s", nodebridge, err, stderr.Bytes())
		}
		line, _, _ := strings.Cut(stderr.String(), "\n")
		out = append(out, strings.TrimSpace(line))
		return nil
	})
	for _, path := range reference {
		bi, err := buildinfo.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read build info of %s: %w", path, err)
		}
		out = append(out, fmt.Sprintf("%s: %s %s (%s)", filepath.Base(path), bi.Path, bi.Main.Version, bi.GoVersion))
	}
	return out, err
}
