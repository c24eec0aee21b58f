package gateway

import (
	"errors"
	"net"
	"sync"
	"syscall"
)

// connLimit caps the client connections of every listener sharing it
// (plain and TLS, fast path and net/http alike). A connection beyond the
// cap is not served until one ends: it waits in the kernel's backlog, as
// it would behind a busy server, instead of costing a goroutine and
// buffers.
type connLimit struct{ slots chan struct{} }

func newConnLimit(n int) *connLimit { return &connLimit{slots: make(chan struct{}, n)} }

// limitListener accepts a connection only when the limit has room.
type limitListener struct {
	net.Listener
	limit *connLimit
	done  chan struct{}
	once  sync.Once
}

func (l *connLimit) listener(ln net.Listener) *limitListener {
	return &limitListener{Listener: ln, limit: l, done: make(chan struct{})}
}

// Accept takes the next connection, then waits for room: a listener
// waiting for connections holds no slot another listener could use. (So
// each listener may hold one connection beyond the cap, unserved.)
func (l *limitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	select {
	case l.limit.slots <- struct{}{}:
	case <-l.done:
		c.Close()
		return nil, net.ErrClosed
	}
	return &limitedConn{Conn: c, slots: l.limit.slots}, nil
}

func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitedConn gives its slot back when closed. It keeps what the servers
// look for on a TCP connection: its raw conn (peeks at a client that
// left) and half-closing.
type limitedConn struct {
	net.Conn
	slots chan struct{}
	once  sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { <-c.slots })
	return err
}

func (c *limitedConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.New("not a socket")
}

func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
