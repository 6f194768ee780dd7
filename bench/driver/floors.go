package main

import (
	"context"
	"errors"
)

// floors is what starting a process costs here, below which no plugin goes.
type floors struct {
	Nop       summary `json:"nop"`                   // a Go binary doing nothing
	NoCommand summary `json:"nodebridge_no_command"` // nodebridge printing its about line
}

// measureFloors execs nop and nodebridge without a command k times each,
// interleaved, the way the rounds exec the plugins.
func (b *bench) measureFloors(ctx context.Context, nop, nb plugin, k int) (f floors, err error) {
	node, err := b.newNode()
	if err != nil {
		return f, err
	}
	defer func() { err = errors.Join(err, b.ns.del(node)) }()
	noCall := func(int) call { return call{} }
	phases, err := runInterleaved(ctx, []lane{{p: nop, node: node, n: k, call: noCall}, {p: nb, node: node, n: k, call: noCall}})
	if err != nil {
		return f, err
	}
	for _, ph := range phases {
		if ph.Failures > 0 {
			return f, ph.FirstErr
		}
	}
	f.Nop, f.NoCommand = summarize(phases[0].Times), summarize(phases[1].Times)
	return f, nil
}
