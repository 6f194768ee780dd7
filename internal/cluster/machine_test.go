package cluster

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/nodebridge/nodebridge/internal/netnstest"
)

// TestMain runs the tests between two fingerprints: netnstest's of the
// machine's network, and machineState's of what a kubelet node could leave
// on the machine itself.
func TestMain(m *testing.M) {
	before := machineState()
	code := netnstest.Main(m)
	after := machineState()
	if diff := changed(before, after); diff != "" {
		fmt.Fprintf(os.Stderr, "cluster: the machine changed during the tests:\n%s", diff)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// changed lists the lines only in before ("-") or only in after ("+").
func changed(before, after []string) string {
	in := map[string]int{}
	for _, l := range before {
		in[l]++
	}
	for _, l := range after {
		in[l]--
	}
	var sb strings.Builder
	for _, l := range append(before, after...) {
		if n := in[l]; n > 0 {
			fmt.Fprintf(&sb, "- %s\n", l)
		} else if n < 0 {
			fmt.Fprintf(&sb, "+ %s\n", l)
		}
		in[l] = 0
	}
	return sb.String()
}

// machineState lists the sysctls kubelet would write, the entries of the
// dirs containerd, kubelet and libcni use by default, and the root mount
// namespace's mount points.
func machineState() []string {
	var lines []string
	for k := range kubeletSysctls() {
		b, err := os.ReadFile("/proc/sys/" + k)
		lines = append(lines, fmt.Sprintf("sysctl %s: %q %v", k, strings.TrimSpace(string(b)), err))
	}
	for _, d := range []string{"/var/lib/kubelet", "/var/lib/containerd", "/var/lib/cni", "/run/containerd",
		"/opt/containerd", "/etc/cni", "/opt/cni", "/var/log/pods", "/var/log/containers"} {
		ents, err := os.ReadDir(d)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		lines = append(lines, fmt.Sprintf("dir %s: %v exists=%v", d, names, err == nil))
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return append(lines, "mountinfo: "+err.Error())
	}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if f := strings.Fields(l); len(f) > 4 && !strings.HasPrefix(f[4], "/run/netns/") {
			lines = append(lines, "mount "+f[4])
		}
	}
	sort.Strings(lines) // the sysctls come from a map
	return lines
}
