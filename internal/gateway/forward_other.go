//go:build !unix

package gateway

import "net"

// alive cannot peek here; the instance's answer tells.
func alive(net.Conn) bool { return true }
