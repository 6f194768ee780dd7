package bridge

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/nodebridge/nodebridge/pkg/rtnl"
)

// podConn is an rtnl.Conn whose socket lives in the pod netns. A socket
// stays in the netns it was made in, so once it exists the pod is set up
// from the calling thread, with no visit: entering the netns for every
// request (ns.Do) costs a goroutine hand-off to a locked thread each time,
// which in a process exec'd per call is dearer than the requests. The
// socket is made on a thread of its own, started as ADD begins so that it
// is ready by the time the pod's end is configured; that thread enters the
// pod netns, is never unlocked, and so ends with its goroutine.
type podConn struct {
	done chan struct{}
	h    *rtnl.Conn
	err  error
}

// dialPod starts opening the socket in n; handle waits for it.
func dialPod(n *podNetns) *podConn {
	c := &podConn{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		runtime.LockOSThread() // never unlocked: see podConn
		if err := unix.Setns(n.fd, unix.CLONE_NEWNET); err != nil {
			c.err = fmt.Errorf("enter %s: %w", n.path, err)
			return
		}
		h, err := rtnl.Open()
		if err != nil {
			c.err = fmt.Errorf("in %s: %w", n.path, err)
			return
		}
		c.h = h
	}()
	return c
}

// handle returns the socket in the pod netns once it is open.
func (c *podConn) handle() (*rtnl.Conn, error) {
	<-c.done
	return c.h, c.err
}

// close waits for the socket and closes it.
func (c *podConn) close() {
	if h, _ := c.handle(); h != nil {
		h.Close()
	}
}
