// Command ipam-op is one nodebridge IPAM operation as a process, so make bench
// can time pkg/ipam against the reference host-local binary process for
// process: it takes the same stdin config and CNI_* environment, and does one
// Open + Lock + Allocate (CNI_COMMAND=ADD) or Release (DEL) + Close, as the
// plugin's ADD and DEL do. On ADD it prints the addresses it got.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/nodebridge/nodebridge/pkg/ipam"
)

// timeout bounds the wait for the lock, as the plugin's own deadline does.
const timeout = 55 * time.Second

// netConf is the part of a network config IPAM reads.
type netConf struct {
	Name string      `json:"name"`
	IPAM ipam.Config `json:"ipam"`
}

func main() {
	if err := run(os.Stdin, os.Stdout, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "ipam-op:", err)
		os.Exit(1)
	}
}

// run does the operation getenv("CNI_COMMAND") names for the config read
// from stdin, and prints what ADD allocated to stdout.
func run(stdin io.Reader, stdout io.Writer, getenv func(string) string) (err error) {
	var nc netConf
	if err := json.NewDecoder(stdin).Decode(&nc); err != nil {
		return fmt.Errorf("decode config on stdin: %w", err)
	}
	pool, err := nc.IPAM.Pool()
	if err != nil {
		return err
	}
	st, err := ipam.Open(pool.DataDir, nc.Name)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, st.Close()) }()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := st.Lock(ctx); err != nil {
		return err
	}
	a := ipam.Attachment{ContainerID: getenv("CNI_CONTAINERID"), IfName: getenv("CNI_IFNAME")}
	switch cmd := getenv("CNI_COMMAND"); cmd {
	case "ADD":
		allocs, err := st.Allocate(pool, a, nil)
		for _, al := range allocs {
			fmt.Fprintln(stdout, al.Addr)
		}
		return err
	case "DEL":
		_, err := st.Release(a)
		return err
	default:
		return fmt.Errorf("CNI_COMMAND %q: want ADD or DEL", cmd)
	}
}
