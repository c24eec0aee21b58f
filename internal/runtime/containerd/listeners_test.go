package containerd

import (
	"net"
	"runtime"
	"strings"
	"testing"

	"github.com/berth-platform/berth/internal/runtime/probe"
)

// The kernel's own /proc/self/net/tcp{,6}: a listener this test opens is
// found with its address and port, in this machine's byte order.
func TestReadListenersFromProc(t *testing.T) {
	loop, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer loop.Close()
	wild, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer wild.Close()
	loopPort, anyPort := loop.Addr().(*net.TCPAddr).Port, wild.Addr().(*net.TCPAddr).Port

	// This thread's network namespace: /proc/self is the main thread's,
	// which a test that pinned a namespace may have left in it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ls, err := readListeners("/proc/thread-self/net")
	if err != nil {
		t.Fatal(err)
	}
	var sawLoop, sawAny bool
	for _, l := range ls {
		switch l.Port {
		case loopPort:
			sawLoop = l.IP.Equal(net.IPv4(127, 0, 0, 1))
		case anyPort:
			sawAny = l.IP.IsUnspecified()
		}
	}
	if !sawLoop || !sawAny {
		t.Fatalf("listeners %v: want 127.0.0.1:%d and an unspecified address on %d", ls, loopPort, anyPort)
	}
	msg := probe.PortMismatch(loopPort, ls)
	if !strings.Contains(msg, "only on 127.0.0.1") {
		t.Errorf("a loopback-only port: %q", msg)
	}
	if msg := probe.PortMismatch(anyPort, ls); msg != "" {
		t.Errorf("an open port is explained as %q", msg)
	}
}

func TestReadListenersMissingDir(t *testing.T) {
	if _, err := readListeners(t.TempDir()); err == nil {
		t.Fatal("a directory without tcp read without error")
	}
}
