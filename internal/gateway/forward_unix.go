//go:build unix

package gateway

import (
	"net"
	"syscall"
)

// alive peeks at an idle connection without blocking: a closed one reads
// EOF, and one with unasked-for bytes is out of step. Only requests that
// cannot be sent twice pay this syscall.
func alive(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ok = false
	var b [1]byte
	err = raw.Read(func(fd uintptr) bool {
		_, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ok = rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK
		return true
	})
	return err == nil && ok
}

// peerClosed peeks at a client connection without blocking or taking its
// read lock (a body read may hold it): EOF or a reset means the client
// has gone.
func peerClosed(raw syscall.RawConn) bool {
	gone := false
	err := raw.Control(func(fd uintptr) {
		var b [1]byte
		n, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		gone = rerr == nil && n == 0 || rerr == syscall.ECONNRESET
	})
	return err == nil && gone
}
