package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"time"

	"github.com/nodebridge/nodebridge/internal/lab"
)

// measure takes o.rounds samples of every path, the paths taking turns.
func (t *topology) measure(ctx context.Context, o options, r *report) error {
	ps := t.paths()
	r.Paths = make([]pathResult, len(ps))
	for i, p := range ps {
		r.Paths[i].Name = p.Name
	}
	for round := range o.rounds {
		for i, p := range ps {
			gbps, err := throughput(ctx, p, o.duration)
			if err != nil {
				return fmt.Errorf("%s, round %d: throughput: %w", p.Name, round+1, err)
			}
			rtts, err := latency(ctx, p, o.pings)
			if err != nil {
				return fmt.Errorf("%s, round %d: latency: %w", p.Name, round+1, err)
			}
			r.Paths[i].Gbps = append(r.Paths[i].Gbps, gbps)
			r.Paths[i].rtts = append(r.Paths[i].rtts, rtts...)
			fmt.Fprintf(os.Stderr, "tunnel: round %d %-20s %6.2f Gbit/s, p50 %v\n", round+1, p.Name, gbps, percentile(rtts, 50))
		}
	}
	return nil
}

// serve listens on p's server side and runs handle on the one connection
// it accepts; the returned channel gives handle's error.
func serve(p path, handle func(net.Conn) error) (string, <-chan error, error) {
	ln, err := lab.Listen(p.to, "tcp", net.JoinHostPort(p.addr.String(), "0"))
	if err != nil {
		return "", nil, err
	}
	done := make(chan error, 1)
	go func() {
		defer ln.Close()
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		done <- handle(c)
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port, done, nil
}

// dial connects from p's client side to the server's port.
func dial(ctx context.Context, p path, port string) (net.Conn, error) {
	return lab.Dialer(p.from)(ctx, "tcp", net.JoinHostPort(p.addr.String(), port))
}

// throughput sends for d and returns what the receiver got, in Gbit/s,
// over the time from the first write to the receiver's count coming back.
func throughput(ctx context.Context, p path, d time.Duration) (float64, error) {
	port, done, err := serve(p, func(c net.Conn) error {
		n, err := io.Copy(io.Discard, c)
		if err != nil {
			return err
		}
		return binary.Write(c, binary.BigEndian, n)
	})
	if err != nil {
		return 0, err
	}
	c, err := dial(ctx, p, port)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	buf := make([]byte, 128<<10)
	start := time.Now()
	for time.Since(start) < d {
		if _, err := c.Write(buf); err != nil {
			return 0, fmt.Errorf("write: %w", err)
		}
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return 0, fmt.Errorf("close write: %w", err)
	}
	var got int64
	if err := binary.Read(c, binary.BigEndian, &got); err != nil {
		return 0, fmt.Errorf("read the count: %w", err)
	}
	took := time.Since(start)
	if err := <-done; err != nil {
		return 0, fmt.Errorf("receiver: %w", err)
	}
	return float64(got) * 8 / took.Seconds() / 1e9, nil
}

// latency sends a byte and waits for its echo n times over one connection.
func latency(ctx context.Context, p path, n int) ([]time.Duration, error) {
	port, done, err := serve(p, func(c net.Conn) error {
		b := make([]byte, 1)
		for {
			if _, err := io.ReadFull(c, b); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
			if _, err := c.Write(b); err != nil {
				return err
			}
		}
	})
	if err != nil {
		return nil, err
	}
	c, err := dial(ctx, p, port)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	b, out := []byte{1}, make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if _, err := c.Write(b); err != nil {
			return nil, fmt.Errorf("write: %w", err)
		}
		if _, err := io.ReadFull(c, b); err != nil {
			return nil, fmt.Errorf("read the echo: %w", err)
		}
		out = append(out, time.Since(start))
	}
	_ = c.(*net.TCPConn).CloseWrite() // the echo ends at EOF; an error shows below
	if err := <-done; err != nil {
		return nil, fmt.Errorf("echo: %w", err)
	}
	return out, nil
}

// percentile is the q-th percentile of ds (nearest rank).
func percentile(ds []time.Duration, q int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(ds))
	i := (len(s)*q + 99) / 100
	return s[max(i-1, 0)]
}
