package main

import (
	"strings"

	"github.com/nodebridge/nodebridge/internal/hoststate"
)

// rootState is what the bench must leave as it found it outside its own
// netns: the root netns's network and the files under /var/lib/cni
// (hoststate.Network), and the named netns this process made. It must run
// on a thread in the root netns, as every unlocked one is: the tools it
// runs read the netns of the thread that starts them.
func rootState() []string {
	own := func(name string) bool { return strings.HasPrefix(name, hoststate.NetnsPrefix()) }
	return append(hoststate.Network(), hoststate.Netns(own)...)
}
