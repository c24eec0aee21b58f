package server

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// A client holding API connections open costs the server nothing for
// long: a connection that never sends a head is closed after the header
// timeout, one kept alive after a request after the idle timeout.
func TestAPIServerClosesSilentAndIdleConnections(t *testing.T) {
	oldHeader, oldIdle := apiHeaderTimeout, apiIdleTimeout
	apiHeaderTimeout, apiIdleTimeout = 300*time.Millisecond, 600*time.Millisecond
	defer func() { apiHeaderTimeout, apiIdleTimeout = oldHeader, oldIdle }()
	srv := newAPIServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()

	closedAfter := func(c net.Conn, br *bufio.Reader) time.Duration {
		t.Helper()
		start := time.Now()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := br.ReadByte(); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("the server kept the connection: %v", err)
		}
		return time.Since(start)
	}
	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	if d := closedAfter(silent, bufio.NewReader(silent)); d < 250*time.Millisecond || d > 3*time.Second {
		t.Errorf("silent connection closed after %v, want the header timeout (300ms)", d)
	}

	idle, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: api\r\n\r\n")
	br := bufio.NewReader(idle)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	if d := closedAfter(idle, br); d < 500*time.Millisecond || d > 3*time.Second {
		t.Errorf("idle connection closed after %v, want the idle timeout (600ms)", d)
	}
}
