//go:build unix

package gateway

import (
	"syscall"
)

// alive peeks at an idle connection without blocking: a closed one reads
// EOF, and one with unasked-for bytes is out of step (whatever arrived
// would be taken for the next request's answer). One recvfrom per reuse,
// through a raw conn and a function made once per connection, so a reuse
// allocates nothing.
func (uc *upConn) alive() bool {
	if uc.peek.fn == nil {
		sc, ok := uc.conn.(syscall.Conn)
		if !ok {
			return true
		}
		raw, err := sc.SyscallConn()
		if err != nil {
			return false
		}
		pk := &uc.peek
		pk.raw = raw
		pk.fn = func(fd uintptr) bool {
			_, _, rerr := syscall.Recvfrom(int(fd), pk.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			pk.idle = rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK
			return true
		}
	}
	uc.peek.idle = false
	err := uc.peek.raw.Read(uc.peek.fn)
	return err == nil && uc.peek.idle
}

// peeker is what alive keeps per connection.
type peeker struct {
	raw  syscall.RawConn
	fn   func(fd uintptr) bool
	buf  [1]byte
	idle bool // nothing to read, and not closed
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
