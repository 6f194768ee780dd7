package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/nodebridge/nodebridge/internal/hoststate"
)

// machineState is what a kubelet node could leave on the machine: its
// network state, the netns this process named, and the sysctls, state dirs
// and mounts of hoststate.Kubelet. Compared before and after, it shows the
// run left the machine as it found it.
func machineState() []string {
	own := func(name string) bool { return strings.HasPrefix(name, fmt.Sprintf("nbd10%x-", os.Getpid())) }
	lines := append(hoststate.Network(), hoststate.Netns(own)...)
	return append(lines, hoststate.Kubelet()...)
}
