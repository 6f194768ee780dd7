package main

import (
	"strings"

	"github.com/nodebridge/nodebridge/internal/hoststate"
)

// rootState is the machine's network state and the netns this process
// named: compared before and after, it shows the run left the root netns as
// it found it.
func rootState() []string {
	own := func(name string) bool { return strings.HasPrefix(name, netnsPrefix()) }
	return append(hoststate.Network(), hoststate.Netns(own)...)
}
