package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// sample is one line of the Prometheus text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// parseMetrics reads the Prometheus text format, skipping comments and any
// line it cannot read: the figures it needs are plain counters and gauges.
func parseMetrics(text string) []sample {
	var out []sample
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if s, ok := parseSample(line); ok {
			out = append(out, s)
		}
	}
	return out
}

// parseSample reads `name{k="v",...} value [timestamp]`.
func parseSample(line string) (sample, bool) {
	s := sample{labels: map[string]string{}}
	rest := line
	if i := strings.IndexAny(line, "{ "); i > 0 && line[i] == '{' {
		s.name = line[:i]
		var ok bool
		if rest, ok = parseLabels(line[i+1:], s.labels); !ok {
			return s, false
		}
	} else if i > 0 {
		s.name, rest = line[:i], line[i:]
	} else {
		return s, false
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return s, false
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, false
	}
	s.value = v
	return s, true
}

// parseLabels reads `k="v",...}` into m and returns what follows the brace.
func parseLabels(s string, m map[string]string) (string, bool) {
	for {
		s = strings.TrimLeft(s, ", ")
		if strings.HasPrefix(s, "}") {
			return s[1:], true
		}
		eq := strings.Index(s, `="`)
		if eq <= 0 {
			return "", false
		}
		key := s[:eq]
		var val strings.Builder
		i := eq + 2
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
				if s[i] == 'n' {
					val.WriteByte('\n')
					continue
				}
			}
			val.WriteByte(s[i])
		}
		if i >= len(s) {
			return "", false
		}
		m[key] = val.String()
		s = s[i+1:]
	}
}

// sum adds up the samples named name whose labels include every pair of match.
func sum(samples []sample, name string, match map[string]string) float64 {
	total := 0.0
	for _, s := range samples {
		if s.name == name && hasLabels(s.labels, match) {
			total += s.value
		}
	}
	return total
}

func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// serverNodeRequests is the API server's count of requests on Nodes, split
// by who can have made them: only the agent lists and watches or patches
// (the lab-admin client here only creates and deletes).
type serverNodeRequests struct {
	ListWatch   float64 `json:"list_watch"`   // finished LIST and WATCH requests
	OpenWatches float64 `json:"open_watches"` // WATCH requests open right now
	Other       float64 `json:"other"`        // GET, PATCH, PUT, APPLY: per-Node requests
	Admin       float64 `json:"admin"`        // POST and DELETE: this program's creates and deletes
}

// nodeRequests reads apiserver_request_total and
// apiserver_longrunning_requests for the nodes resource.
func nodeRequests(samples []sample) serverNodeRequests {
	var r serverNodeRequests
	for _, s := range samples {
		if s.labels["resource"] != "nodes" {
			continue
		}
		switch {
		case s.name == "apiserver_longrunning_requests" && s.labels["verb"] == "WATCH":
			r.OpenWatches += s.value
		case s.name != "apiserver_request_total":
		case s.labels["verb"] == "LIST" || s.labels["verb"] == "WATCH":
			r.ListWatch += s.value
		case s.labels["verb"] == "POST" || s.labels["verb"] == "DELETE":
			r.Admin += s.value
		default:
			r.Other += s.value
		}
	}
	return r
}

// minus is r minus an earlier reading; open watches are a gauge, kept as is.
func (r serverNodeRequests) minus(base serverNodeRequests) serverNodeRequests {
	return serverNodeRequests{ListWatch: r.ListWatch - base.ListWatch, OpenWatches: r.OpenWatches,
		Other: r.Other - base.Other, Admin: r.Admin - base.Admin}
}

// memory is a process's resident set now and at its peak, in KiB.
type memory struct {
	VmRSSKiB int `json:"vm_rss_kib"`
	VmHWMKiB int `json:"vm_hwm_kib"`
}

// parseStatus reads VmRSS and VmHWM from /proc/<pid>/status text.
func parseStatus(text string) (memory, error) {
	var m memory
	found := 0
	for line := range strings.Lines(text) {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return m, fmt.Errorf("status line %q: want <n> kB", strings.TrimSpace(line))
		}
		n, err := strconv.Atoi(f[0])
		if err != nil {
			return m, fmt.Errorf("status line %q: %w", strings.TrimSpace(line), err)
		}
		if key == "VmRSS" {
			m.VmRSSKiB = n
		} else {
			m.VmHWMKiB = n
		}
		found++
	}
	if found != 2 {
		return m, fmt.Errorf("status: VmRSS or VmHWM missing")
	}
	return m, nil
}

// readMemory reads the memory figures of pid.
func readMemory(pid int) (memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, fmt.Errorf("read status of pid %d: %w", pid, err)
	}
	return parseStatus(string(b))
}

// userHZ is the unit of the times in /proc/<pid>/stat: USER_HZ, 100 on
// every Linux ABI this runs on.
const userHZ = 100

// parseStat reads utime plus stime, in seconds, from /proc/<pid>/stat
// text. The fields are counted after the command name's closing
// parenthesis, as the name itself may hold spaces.
func parseStat(text string) (float64, error) {
	i := strings.LastIndexByte(text, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat %q: no closing parenthesis", text)
	}
	// After ")": state is field 3, utime field 14, stime field 15.
	f := strings.Fields(text[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("stat %q: %d fields after the name, want at least 13", text, len(f))
	}
	var total float64
	for _, s := range f[11:13] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("stat utime/stime %q: %w", s, err)
		}
		total += float64(n)
	}
	return total / userHZ, nil
}

// readCPU reads the CPU seconds pid has used, user and system.
func readCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read stat of pid %d: %w", pid, err)
	}
	return parseStat(string(b))
}
