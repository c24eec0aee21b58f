//go:build unix

package gateway

import (
	"net"
	"strconv"
	"syscall"
	"testing"
)

// closedAddr is a loopback address nothing listens on: a socket bound to
// it and never listening keeps the port, so no listener of the test (the
// front server itself, which would make the proxy call itself in a loop)
// can get it while connections to it are refused.
func closedAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
}
