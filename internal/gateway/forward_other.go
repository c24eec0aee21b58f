//go:build !unix

package gateway

import (
	"net"
	"syscall"
)

// alive cannot peek here; the instance's answer tells.
func alive(net.Conn) bool { return true }

// peerClosed cannot peek here: a client that left is noticed when its
// answer cannot be written.
func peerClosed(syscall.RawConn) bool { return false }
