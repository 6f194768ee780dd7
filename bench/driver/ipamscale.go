package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"
)

// scaleCell is one IPAM program's cost per operation at one fill.
type scaleCell struct {
	First ms      `json:"first_add_ms"` // the untimed warm-up ADD: nodebridge (re)builds its index here
	Add   summary `json:"add"`
	Del   summary `json:"del"`
}

// scaleRow is the IPAM cost of both programs at one fill.
type scaleRow struct {
	Fill       int       `json:"fill"`
	Reference  scaleCell `json:"reference_host_local"`
	Nodebridge scaleCell `json:"nodebridge_ipam_op"`
}

// ipamScale times k ADD+DEL pairs of each IPAM program, one process per
// operation, on a dataDir pre-filled with fill allocations, for every fill.
// Both programs share the dataDir of a fill, the reference going first.
func (b *bench) ipamScale(ctx context.Context, fills []int, k int, ref, nb plugin) (rows []scaleRow, err error) {
	node, err := b.newNode()
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, b.ns.del(node)) }()
	pod, err := b.ns.add("pod") // host-local refuses a CNI_NETNS that is its own netns
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, b.ns.del(pod)) }()
	for _, fill := range fills {
		dataDir, err := os.MkdirTemp(b.tmp, fmt.Sprintf("ipam-%d-", fill))
		if err != nil {
			return nil, fmt.Errorf("make dataDir: %w", err)
		}
		if err := prefill(filepath.Join(dataDir, b.net.Name), b.net.gateway(), fill); err != nil {
			return nil, err
		}
		conf := b.net.conf("bridge", "", dataDir)
		row := scaleRow{Fill: fill}
		if row.Reference, err = ipamCell(ctx, node, pod, ref, conf, k); err != nil {
			return nil, err
		}
		if row.Nodebridge, err = ipamCell(ctx, node, pod, nb, conf, k); err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// prefill writes n allocations after gw into dir as reference host-local
// lays them out: one file per address holding "containerID\r\nifname", and
// last_reserved_ip.0 at the last one.
func prefill(dir string, gw netip.Addr, n int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("make network dir: %w", err)
	}
	addr := gw
	for i := range n {
		addr = addr.Next()
		body := fmt.Sprintf("prefill-%06d\r\neth0", i)
		if err := os.WriteFile(filepath.Join(dir, addr.String()), []byte(body), 0o644); err != nil {
			return fmt.Errorf("prefill %s: %w", dir, err)
		}
	}
	last := filepath.Join(dir, "last_reserved_ip.0")
	if err := os.WriteFile(last, []byte(addr.String()), 0o644); err != nil {
		return fmt.Errorf("prefill %s: %w", last, err)
	}
	return nil
}

// ipamCell runs one warm-up pair, then k timed ADD+DEL pairs, each pair for
// a new container, so the fill stays put, from a thread in node. The pod
// netns is only named in CNI_NETNS: IPAM programs do not enter it.
func ipamCell(ctx context.Context, node, pod string, p plugin, conf []byte, k int) (c scaleCell, err error) {
	var adds, dels []time.Duration
	err = inNetns(node, func() error {
		for i := range k + 1 {
			if err := ctx.Err(); err != nil {
				return err
			}
			id := containerID("ipam", p.Name, i)
			add, err := p.run(call{Command: "ADD", ContainerID: id, Netns: pod, IfName: "eth0", Conf: conf})
			if err != nil {
				return err
			}
			del, err := p.run(call{Command: "DEL", ContainerID: id, Netns: pod, IfName: "eth0", Conf: conf})
			if err != nil {
				return err
			}
			if i == 0 {
				c.First = ms(add)
				continue
			}
			adds, dels = append(adds, add), append(dels, del)
		}
		return nil
	})
	c.Add, c.Del = summarize(adds), summarize(dels)
	return c, err
}
