//go:build !unix

package gateway

import (
	"syscall"
)

// alive cannot peek here; the instance's answer tells.
func (uc *upConn) alive() bool { return true }

type peeker struct{}

// peerClosed cannot peek here: a client that left is noticed when its
// answer cannot be written.
func peerClosed(syscall.RawConn) bool { return false }
