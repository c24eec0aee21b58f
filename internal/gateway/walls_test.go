package gateway

// The gateway's walls, tried as a hostile instance or client would.

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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

// wallGateway is a gateway with short timeouts and one route to an echo
// backend, on its own loopback ports.
func wallGateway(t *testing.T, cfg Config) *Gateway {
	t.Helper()
	g := startGateway(t, cfg)
	up := backend(t, echoHandler)
	g.Apply(State{HTTP: []Route{{ID: "r1", Domain: "app.test", Path: "/", Component: "team/app", Port: 80, Upstreams: fixed(up)}}})
	return g
}

// dialers reach a gateway's listeners as a client would: the plain one
// (fast path, or net/http alone) and TLS with HTTP/1.1.
type dialer struct {
	name string
	addr string // the listener's
	dial func(t *testing.T) net.Conn
}

func wallDialers(t *testing.T, cfg Config) []dialer {
	t.Helper()
	fast := wallGateway(t, cfg)
	cfg.NetHTTPOnly = true
	plain := wallGateway(t, cfg)
	tcp := func(addr string) func(t *testing.T) net.Conn {
		return func(t *testing.T) net.Conn {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			c.SetDeadline(time.Now().Add(10 * time.Second))
			return c
		}
	}
	return []dialer{
		{"fast path", fast.HTTPAddr(), tcp(fast.HTTPAddr())},
		{"net/http", plain.HTTPAddr(), tcp(plain.HTTPAddr())},
		{"TLS", fast.HTTPSAddr(), func(t *testing.T) net.Conn {
			c, err := tls.Dial("tcp", fast.HTTPSAddr(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			c.SetDeadline(time.Now().Add(10 * time.Second))
			return c
		}},
	}
}

// readUntilClosed reads a connection to its end: it fails the test if the
// gateway keeps it open.
func readUntilClosed(t *testing.T, c net.Conn) string {
	t.Helper()
	b, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the gateway kept the connection: %v (read %q)", err, b)
	}
	return string(b)
}

// A request with both Content-Length and Transfer-Encoding gets 400 and a
// closed connection, wherever it is read: first on a connection, after a
// chunked request (the fast path has handed the connection to net/http),
// and after requests answered (pipelined).
func TestContentLengthWithTransferEncodingIs400AndClosed(t *testing.T) {
	smuggle := "POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n"
	chunked := "POST /first HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"1c\r\nContent-Length: 5\r\nTransfer-\r\n0\r\nTrailer-Field: x\r\n\r\n"
	plain := "GET /first HTTP/1.1\r\nHost: app.test\r\n\r\n"
	for _, d := range wallDialers(t, Config{}) {
		for _, tc := range []struct{ name, before string }{
			{"first", ""}, {"after a chunked request", chunked}, {"pipelined", plain + plain}, {"lower case", ""},
		} {
			t.Run(d.name+"/"+tc.name, func(t *testing.T) {
				req := smuggle
				if tc.name == "lower case" {
					req = strings.Replace(strings.Replace(req, "Content-Length", "content-length", 1), "Transfer-Encoding", "transfer-ENCODING", 1)
				}
				c := d.dial(t)
				io.WriteString(c, tc.before+req)
				got := readUntilClosed(t, c)
				answers := strings.Count(got, "HTTP/1.1 ")
				if want := strings.Count(tc.before, "HTTP/1.1\r\n") + 1; answers != want || !strings.Contains(got, "HTTP/1.1 400 Bad Request\r\n") {
					t.Fatalf("%d answers, want %d ending with 400:\n%s", answers, want, got)
				}
				if strings.Contains(got, "/smuggled") {
					t.Fatalf("the smuggled request was answered:\n%s", got)
				}
				if tc.before != "" && !strings.Contains(got, `"uri":"/first"`) {
					t.Fatalf("the requests before were not answered:\n%s", got)
				}
			})
		}
	}
}

// A connection that sends nothing is closed after the header timeout; one
// kept alive after a request, after the idle timeout.
func TestSilentAndIdleConnectionsAreClosed(t *testing.T) {
	cfg := Config{HeaderTimeout: 300 * time.Millisecond, IdleTimeout: 600 * time.Millisecond}
	for _, d := range wallDialers(t, cfg) {
		t.Run(d.name+"/silent", func(t *testing.T) {
			// Not even a TLS handshake.
			c, err := net.Dial("tcp", d.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			start := time.Now()
			readUntilClosed(t, c)
			if took := time.Since(start); took < 250*time.Millisecond || took > 3*time.Second {
				t.Fatalf("closed after %v, want the header timeout (300ms)", took)
			}
		})
		t.Run(d.name+"/idle", func(t *testing.T) {
			c := d.dial(t)
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			start := time.Now()
			if _, err := br.ReadByte(); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("idle connection: %v", err)
			}
			if took := time.Since(start); took < 500*time.Millisecond || took > 3*time.Second {
				t.Fatalf("idle connection closed after %v, want the idle timeout (600ms)", took)
			}
		})
	}
}

// Beyond the connection cap a connection waits to be accepted, whichever
// listener it comes to, until one of those served ends.
func TestConnectionCap(t *testing.T) {
	for _, netHTTP := range []bool{false, true} {
		t.Run(fmt.Sprint("net/http only ", netHTTP), func(t *testing.T) {
			g := wallGateway(t, Config{MaxConns: 2, NetHTTPOnly: netHTTP})
			plain, err := net.Dial("tcp", g.HTTPAddr())
			if err != nil {
				t.Fatal(err)
			}
			defer plain.Close()
			secure, err := tls.Dial("tcp", g.HTTPSAddr(), &tls.Config{InsecureSkipVerify: true})
			if err != nil {
				t.Fatal(err)
			}
			defer secure.Close()
			third, err := net.Dial("tcp", g.HTTPAddr())
			if err != nil {
				t.Fatal(err)
			}
			defer third.Close()
			io.WriteString(third, "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
			third.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			if n, err := third.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("a third connection beyond the cap of 2 was served: %d bytes, %v", n, err)
			}
			secure.Close()
			third.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(third), nil)
			if err != nil {
				t.Fatalf("the third connection once one ended: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("the third connection once one ended: %s", resp.Status)
			}
		})
	}
}

// The scanner follows any split of the stream: bodies that look like
// heads are skipped, and the smuggling head is found wherever reads end;
// net/http's own parser reads the requests before it and fails on it.
func TestFramingScannerAnyReadSizes(t *testing.T) {
	body := "Content-Length: 1\r\nTransfer-Encoding: x\r\n\r\n"
	good := fmt.Sprintf("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body) +
		"POST /b HTTP/1.1\r\nHost: x\r\ntransfer-encoding: chunked\r\n\r\n" +
		fmt.Sprintf("%x;ext=1\r\n%s\r\n0\r\nX: y\r\n\r\n", len(body), body) +
		"GET /c HTTP/1.0\r\nHost: x\r\n\r\n"
	for _, bad := range []string{
		"GET /d HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET /d HTTP/1.1\nHost: x\nTRANSFER-ENCODING: chunked\ncontent-length: 5\n\n",
	} {
		stream := good + bad + "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
		for size := 1; size <= len(stream); size++ {
			var s framingScanner
			var out []byte
			for off := 0; off < len(stream); off += size {
				chunk := stream[off:min(off+size, len(stream))]
				buf := make([]byte, len(chunk))
				n, _ := s.read(buf, func(p []byte) (int, error) { return copy(p, chunk), nil })
				out = append(out, buf[:n]...)
			}
			for {
				buf := make([]byte, 1) // as net/http's background read
				n, err := s.read(buf, func(p []byte) (int, error) { return 0, io.EOF })
				out = append(out, buf[:n]...)
				if err != nil {
					break
				}
			}
			br := bufio.NewReader(bytes.NewReader(out))
			var paths []string
			var err error
			for {
				var r *http.Request
				if r, err = http.ReadRequest(br); err != nil {
					break
				}
				io.Copy(io.Discard, r.Body)
				paths = append(paths, r.URL.Path)
			}
			if strings.Join(paths, " ") != "/a /b /c" || err == nil || err == io.EOF || bytes.Contains(out, []byte("smuggled")) {
				t.Fatalf("reads of %d: requests %v, then %v, from %q", size, paths, err, out)
			}
		}
	}
	// And a stream without one passes whole.
	var s framingScanner
	if n, err := s.scan([]byte(good)); n != len(good) || err != nil {
		t.Fatalf("good stream: %d of %d, %v", n, len(good), err)
	}
}

// The TLS listener's handshakes are the gateway's: h2 still reaches
// net/http's HTTP/2 server, and HTTP/1.1 (read through the scanner) still
// knows it came over TLS.
func TestTLSListenerServesHTTP2AndHTTP1(t *testing.T) {
	g := wallGateway(t, Config{})
	for _, h2 := range []bool{true, false} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: h2}
		if !h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		req, _ := http.NewRequest("GET", "https://"+g.HTTPSAddr()+"/x", nil)
		req.Host = "app.test"
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var echo map[string]any
		json.NewDecoder(resp.Body).Decode(&echo)
		resp.Body.Close()
		tr.CloseIdleConnections()
		wantProto := map[bool]string{true: "HTTP/2.0", false: "HTTP/1.1"}[h2]
		if resp.StatusCode != 200 || resp.Proto != wantProto || echo["xfp"] != "https" {
			t.Errorf("h2 %v: %s %s, forwarded proto %v", h2, resp.Proto, resp.Status, echo["xfp"])
		}
	}
}
