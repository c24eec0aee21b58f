package gateway

// The gateway's walls, tried as a hostile instance or client would.

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// keepAliveBackend answers every request on every connection with
// answer(connection number, request number, method); the bytes it returns
// go out as they are, so an instance can say more than it was asked.
func keepAliveBackend(t *testing.T, answer func(conn, req int, method string) []string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	var n atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			num := int(n.Add(1))
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serveKeepAlive(c, num, answer)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func serveKeepAlive(c net.Conn, num int, answer func(conn, req int, method string) []string) {
	br := bufio.NewReader(c)
	for req := 1; ; req++ {
		method := ""
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if method == "" {
				method, _, _ = strings.Cut(line, " ")
			}
			if line == "\r\n" {
				break
			}
		}
		// Each part is its own write, a little apart, so that what
		// follows the answer arrives after the gateway has read it.
		for i, part := range answer(num, req, method) {
			if i > 0 {
				time.Sleep(30 * time.Millisecond)
			}
			if _, err := c.Write([]byte(part)); err != nil {
				return
			}
		}
	}
}

func okAnswer(body string) string {
	return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

// An instance that sends something nobody asked for on a kept-alive
// connection must not reach the next client: the connection is dropped.
func TestUpstreamUnaskedBytesAreNotAnAnswer(t *testing.T) {
	smuggled := okAnswer("smuggled")
	for _, tc := range []struct {
		name, method string
		first        func(conn int) []string
	}{
		{"late second answer", "GET", func(conn int) []string {
			return []string{okAnswer(fmt.Sprint("conn ", conn)), smuggled}
		}},
		{"extra bytes in the same write", "GET", func(conn int) []string {
			return []string{okAnswer(fmt.Sprint("conn ", conn)) + smuggled}
		}},
		{"HEAD answered with a body", "HEAD", func(conn int) []string {
			return []string{fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(smuggled)), smuggled}
		}},
		{"HEAD answered with a body in the same write", "HEAD", func(conn int) []string {
			return []string{fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(smuggled)) + smuggled}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := keepAliveBackend(t, func(conn, req int, method string) []string {
				if conn == 1 && req == 1 {
					return tc.first(conn)
				}
				return []string{okAnswer(fmt.Sprint("conn ", conn))}
			})
			f := newFixture(t, ProxyOptions{}, Route{Domain: "bleed.test", Upstreams: addrs(up)})
			resp, _ := f.do(t, tc.method, "bleed.test", "/", nil)
			if resp.StatusCode != 200 {
				t.Fatalf("first request: %d", resp.StatusCode)
			}
			time.Sleep(150 * time.Millisecond) // what follows has arrived
			for i := 0; i < 3; i++ {
				resp, got := f.do(t, "GET", "bleed.test", "/", nil)
				if got == "smuggled" || resp.StatusCode != 200 || !strings.HasPrefix(got, "conn ") {
					t.Fatalf("request %d after the unasked bytes: %d %q", i+2, resp.StatusCode, got)
				}
				if got == "conn 1" {
					t.Fatalf("request %d went on the connection that had unasked bytes", i+2)
				}
			}
		})
	}
}
