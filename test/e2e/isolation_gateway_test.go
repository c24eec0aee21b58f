package e2e

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The real server's listeners, tried as a hostile client would: a request
// with both Content-Length and Transfer-Encoding gets 400 and a closed
// connection from the gateway (plain and TLS), and a connection that never
// sends a head is closed after the header timeout (the gateway's, set by
// --gateway-header-timeout, and the API's).
func TestGatewaySmugglingAndSilentAPIConnections(t *testing.T) {
	s := startServer(t, "--gateway-header-timeout", "1s")
	smuggle := "POST / HTTP/1.1\r\nHost: nobody.berth.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: nobody.berth.test\r\n\r\n"
	dial := map[string]func() (net.Conn, error){
		"plain": func() (net.Conn, error) { return net.Dial("tcp", s.gatewayHTTP) },
		"TLS": func() (net.Conn, error) {
			return tls.Dial("tcp", s.gatewayHTTPS, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		},
	}
	for name, d := range dial {
		c, err := d()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, smuggle)
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("%s: the gateway kept the connection: %v (read %q)", name, err, got)
		}
		if !strings.HasPrefix(string(got), "HTTP/1.1 400 Bad Request\r\n") || strings.Count(string(got), "HTTP/1.1 ") != 1 {
			t.Errorf("%s: Content-Length with Transfer-Encoding: %q", name, got)
		}
	}

	for _, tc := range []struct {
		name, addr string
		within     time.Duration
	}{{"gateway", s.gatewayHTTP, 5 * time.Second}, {"gateway TLS", s.gatewayHTTPS, 5 * time.Second}, {"API", s.addr, 15 * time.Second}} {
		c, err := net.Dial("tcp", tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		start := time.Now()
		if _, err := c.Read(make([]byte, 1)); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("silent %s connection: %v", tc.name, err)
		}
		if took := time.Since(start); took > tc.within {
			t.Errorf("silent %s connection closed after %v", tc.name, took)
		}
	}
}
