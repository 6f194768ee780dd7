package rtnl

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Watch is a netlink socket subscribed to every link, address and route
// change of one netns, read without blocking. The kernel queues a change's
// notification before the call that made it returns, so an empty Watch
// means nothing changed since it was last drained, whoever changed it.
type Watch struct {
	fd  int
	buf []byte
}

// watchGroups are the multicast groups of every link, address and route
// change, both families.
const watchGroups = unix.RTMGRP_LINK | unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV6_IFADDR |
	unix.RTMGRP_IPV4_ROUTE | unix.RTMGRP_IPV6_ROUTE

// Watch opens a Watch on the netns of r's socket.
// Equivalent to: ip monitor link address route
func (r *Conn) Watch() (*Watch, error) {
	ns, err := socketNetnsFD(r.fd)
	if err != nil {
		return nil, err
	}
	defer unix.Close(ns)
	return InNetns(ns, openWatch)
}

func openWatch() (*Watch, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open rtnetlink watch socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: watchGroups}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("subscribe to link, address and route changes: %w", err)
	}
	return &Watch{fd: fd, buf: make([]byte, bufSize)}, nil
}

// Changed drains the socket and reports whether it held a notification,
// or lost some (a full socket buffer: ENOBUFS); an error says true too.
func (w *Watch) Changed() (bool, error) {
	changed := false
	for {
		n, _, err := unix.Recvfrom(w.fd, w.buf, unix.MSG_DONTWAIT)
		switch {
		case errors.Is(err, unix.EAGAIN):
			return changed, nil
		case errors.Is(err, unix.ENOBUFS):
			changed = true
		case errors.Is(err, unix.EINTR):
		case err != nil:
			return true, fmt.Errorf("read rtnetlink watch: %w", err)
		case n > 0:
			changed = true
		}
	}
}

// Close closes the socket.
func (w *Watch) Close() error { return unix.Close(w.fd) }
