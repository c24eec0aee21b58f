package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

// --- helpers ---

// records keeps copies of what the proxy observed (the records themselves
// are pooled and must not be kept).
type records struct {
	mu   sync.Mutex
	recs []AccessRecord
}

func (r *records) Observe(rec *AccessRecord) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, *rec)
}

func (r *records) all() []AccessRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]AccessRecord(nil), r.recs...)
}

// waitFor waits until there are n records (the observer runs when the
// handler ends, which may be after the client has the last byte).
func (r *records) waitFor(t *testing.T, n int) []AccessRecord {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if recs := r.all(); len(recs) >= n {
			time.Sleep(20 * time.Millisecond) // and no more come
			return r.all()
		}
	}
	recs := r.all()
	t.Fatalf("%d records, want %d: %+v", len(recs), n, recs)
	return nil
}

func addrs(a ...string) func() []string { return func() []string { return a } }

// backend serves h on a loopback port and returns its address.
func backend(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// rawBackend answers every connection with serve, which gets the request
// head as read; for instances that do what net/http would not.
func rawBackend(t *testing.T, serve func(c net.Conn, head string)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
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
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				var head strings.Builder
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					head.WriteString(line)
					if line == "\r\n" {
						break
					}
				}
				serve(c, head.String())
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

type fixture struct {
	p      *Proxy
	url    string // the front server, http://127.0.0.1:port
	recs   *records
	client *http.Client
}

// newFixture serves a proxy with routes behind an httptest server.
func newFixture(t *testing.T, opts ProxyOptions, routes ...Route) *fixture {
	t.Helper()
	checkGoroutines(t)
	f := &fixture{recs: &records{}}
	opts.Observer = f.recs
	f.p = NewProxyWith(opts)
	f.p.SetRoutes(routes)
	front := newFront(t, f.p)
	f.url = front.URL
	tr := &http.Transport{}
	f.client = &http.Client{Transport: tr}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		front.Close()
		f.p.Close()
	})
	return f
}

// do sends a request for host through the front server.
func (f *fixture) do(t *testing.T, method, host, path string, body io.Reader, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, f.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, host, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s%s: reading body: %v", method, host, path, err)
	}
	return resp, string(b)
}

// checkGoroutines fails the test if goroutines it started (the proxy's,
// the servers', the clients') outlive it.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := goroutineIDs()
	t.Cleanup(func() {
		var leaked []string
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			leaked = leaked[:0]
			for id, stack := range goroutineStacks() {
				if !before[id] && (strings.Contains(stack, "internal/gateway.") || strings.Contains(stack, "net/http.")) &&
					!strings.Contains(stack, "checkGoroutines") {
					leaked = append(leaked, stack)
				}
			}
			if len(leaked) == 0 {
				return
			}
		}
		t.Errorf("%d goroutines left behind:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
	})
}

func goroutineStacks() map[string]string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	out := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		id, _, _ := strings.Cut(strings.TrimPrefix(g, "goroutine "), " ")
		out[id] = g
	}
	return out
}

func goroutineIDs() map[string]bool {
	ids := map[string]bool{}
	for id := range goroutineStacks() {
		ids[id] = true
	}
	return ids
}

func get(t *testing.T, h http.Handler, host string, accept string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest("GET", "http://"+host+"/", nil)
	r.Host = host
	if accept != "" {
		r.Header.Set("Accept", accept)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// --- errors ---

func TestEveryErrorSaysWhy(t *testing.T) {
	ok := backend(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello via "+r.Header.Get("X-Forwarded-Host")+" id="+r.Header.Get("X-Request-Id"))
	})
	slow := backend(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(500 * time.Millisecond)
	})
	// Takes the request, then resets the connection without answering.
	reset := rawBackend(t, func(c net.Conn, head string) {
		c.(*net.TCPConn).SetLinger(0)
	})
	closed := closedAddr(t)

	p := NewProxy(200 * time.Millisecond)
	defer p.Close()
	p.SetRoutes([]Route{
		{Domain: "ok.test", Component: "shop/web", Port: 80, Upstreams: addrs(ok)},
		{Domain: "down.test", Component: "shop/api", Port: 8080, Upstreams: addrs()},
		{Domain: "refused.test", Component: "shop/api", Port: 8080, Upstreams: addrs(closed)},
		{Domain: "reset.test", Component: "shop/api", Port: 8080, Upstreams: addrs(reset)},
		{Domain: "slow.test", Component: "shop/slow", Port: 80, Upstreams: addrs(slow)},
		{Domain: "limited.test", Component: "shop/web", Port: 80, Upstreams: addrs(ok), Limiter: NewRateLimiter(0.001, 1)},
	})

	w := get(t, p, "ok.test", "")
	if w.Code != 200 || !strings.HasPrefix(w.Body.String(), "hello via ok.test id=req-") {
		t.Fatalf("ok: %d %q", w.Code, w.Body)
	}
	if id := w.Header().Get("X-Request-Id"); !strings.HasSuffix(w.Body.String(), "id="+id) {
		t.Errorf("response X-Request-Id %q is not the one sent upstream: %s", id, w.Body)
	}
	if w := get(t, p, "limited.test", ""); w.Code != 200 {
		t.Fatalf("limited.test, first request: %d", w.Code)
	}
	for _, tc := range []struct {
		host   string
		status int
		cause  string
	}{
		{"nowhere.test", 404, CauseUnknownHost},
		{"down.test", 503, CauseNoReadyInstance},
		{"refused.test", 502, CauseRefused},
		{"reset.test", 502, CauseReset},
		{"slow.test", 504, CauseTimeout},
		{"limited.test", 503, CauseRateLimited},
	} {
		w := get(t, p, tc.host, "application/json")
		if w.Code != tc.status || w.Header().Get("X-Berth-Error") != tc.cause {
			t.Errorf("%s: %d %q, want %d %q", tc.host, w.Code, w.Header().Get("X-Berth-Error"), tc.status, tc.cause)
			continue
		}
		var body struct{ Error Failure }
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error.Advice == "" || body.Error.RequestID == "" {
			t.Errorf("%s: body %s", tc.host, w.Body)
		}
		if body.Error.RequestID != w.Header().Get("X-Request-Id") {
			t.Errorf("%s: page names request %q, header %q", tc.host, body.Error.RequestID, w.Header().Get("X-Request-Id"))
		}
		if tc.status != 404 && body.Error.Component == "" {
			t.Errorf("%s: no component named: %s", tc.host, w.Body)
		}
		html := get(t, p, tc.host, "text/html,application/xhtml+xml")
		if !strings.Contains(html.Header().Get("Content-Type"), "text/html") || !strings.Contains(html.Body.String(), tc.cause) {
			t.Errorf("%s: browsers get %q: %s", tc.host, html.Header().Get("Content-Type"), html.Body)
		}
	}
}

func TestBodyTooLarge(t *testing.T) {
	var got atomic.Int64
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		got.Store(n)
		fmt.Fprint(w, n)
	})
	f := newFixture(t, ProxyOptions{}, Route{Domain: "up.test", Component: "shop/up", Upstreams: addrs(up), MaxBodyBytes: 1000})

	// Announced: refused before the instance is asked.
	resp, _ := f.do(t, "POST", "up.test", "/", strings.NewReader(strings.Repeat("x", 1001)))
	if resp.StatusCode != 413 || resp.Header.Get("X-Berth-Error") != CauseBodyTooLarge {
		t.Errorf("content-length over the limit: %d %q", resp.StatusCode, resp.Header.Get("X-Berth-Error"))
	}
	// Chunked: cut off when the limit is crossed.
	resp, _ = f.do(t, "POST", "up.test", "/", io.MultiReader(strings.NewReader(strings.Repeat("x", 600)), strings.NewReader(strings.Repeat("y", 600))))
	if resp.StatusCode != 413 || resp.Header.Get("X-Berth-Error") != CauseBodyTooLarge {
		t.Errorf("chunked over the limit: %d %q", resp.StatusCode, resp.Header.Get("X-Berth-Error"))
	}
	// Within the limit, both ways.
	resp, body := f.do(t, "POST", "up.test", "/", strings.NewReader(strings.Repeat("x", 1000)))
	if resp.StatusCode != 200 || body != "1000" {
		t.Errorf("content-length within the limit: %d %q", resp.StatusCode, body)
	}
	resp, body = f.do(t, "POST", "up.test", "/", io.MultiReader(strings.NewReader(strings.Repeat("x", 500)), strings.NewReader(strings.Repeat("y", 500))))
	if resp.StatusCode != 200 || body != "1000" {
		t.Errorf("chunked within the limit: %d %q", resp.StatusCode, body)
	}
	recs := f.recs.waitFor(t, 4)
	if recs[0].Cause != CauseBodyTooLarge || recs[0].Upstream != "" || recs[1].Cause != CauseBodyTooLarge || recs[1].Status != 413 {
		t.Errorf("records: %+v", recs[:2])
	}
}

// --- routing ---

func TestRewritePath(t *testing.T) {
	up := backend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.RequestURI) })
	f := newFixture(t, ProxyOptions{},
		Route{Domain: "rw.test", Path: "/api", RewritePath: "/", Upstreams: addrs(up)},
		Route{Domain: "rw.test", Path: "/old/", RewritePath: "/new/", Upstreams: addrs(up)},
		Route{Domain: "rw.test", Path: "/", Upstreams: addrs(up)},
	)
	for path, want := range map[string]string{
		"/api/items?q=1&r=%20": "/items?q=1&r=%20",
		"/api":                 "/",
		"/api/":                "/",
		"/api/a%2Fb":           "/a%2Fb",
		"/old/a/b":             "/new/a/b",
		"/old":                 "/new",
		"/apix/y":              "/apix/y",
		"/x/%7Ey?z":            "/x/%7Ey?z",
	} {
		if _, got := f.do(t, "GET", "rw.test", path, nil); got != want {
			t.Errorf("%s went upstream as %q, want %q", path, got, want)
		}
	}
}

func TestHeaderRoutingThroughTable(t *testing.T) {
	stable := backend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "stable") })
	beta := backend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "beta") })
	f := newFixture(t, ProxyOptions{},
		Route{ID: "stable", Domain: "app.test", Path: "/", Upstreams: addrs(stable)},
		Route{ID: "beta", Domain: "app.test", Path: "/", Headers: map[string]string{"X-Beta": "1"}, Upstreams: addrs(beta)},
	)
	if _, body := f.do(t, "GET", "app.test", "/", nil); body != "stable" {
		t.Errorf("without header: %q", body)
	}
	if _, body := f.do(t, "GET", "app.test", "/", nil, "X-Beta", "1"); body != "beta" {
		t.Errorf("with header: %q", body)
	}
	recs := f.recs.waitFor(t, 2)
	if recs[0].Route.ID != "stable" || recs[1].Route.ID != "beta" {
		t.Errorf("records name routes %q, %q", recs[0].Route.ID, recs[1].Route.ID)
	}
}

func TestRedirectHTTPS(t *testing.T) {
	up := backend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "app "+r.URL.Path) })
	f := newFixture(t, ProxyOptions{}, Route{Domain: "secure.test", RedirectHTTPS: true, Upstreams: addrs(up)})
	f.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	resp, _ := f.do(t, "GET", "secure.test:8080", "/a/b?c=d", nil)
	if resp.StatusCode != 308 || resp.Header.Get("Location") != "https://secure.test/a/b?c=d" {
		t.Errorf("plain HTTP: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := f.do(t, "GET", "secure.test", "/.well-known/acme-challenge/tok", nil)
	if resp.StatusCode != 200 || body != "app /.well-known/acme-challenge/tok" {
		t.Errorf("ACME challenge: %d %q", resp.StatusCode, body)
	}

	// Over TLS the request goes through.
	front := httptest.NewTLSServer(f.p)
	defer front.Close()
	client := front.Client()
	defer client.CloseIdleConnections()
	req, _ := http.NewRequest("GET", front.URL+"/x", nil)
	req.Host = "secure.test"
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "app /x" {
		t.Errorf("TLS: %d %q", resp.StatusCode, b)
	}
}

// --- headers ---

func TestForwardedAndHopByHopHeaders(t *testing.T) {
	var seen http.Header
	var seenHost string
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		seen, seenHost = r.Header.Clone(), r.Host
		w.Header().Set("Connection", "X-Hidden")
		w.Header().Set("X-Hidden", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Add("Set-Cookie", "a=1")
		w.Header().Add("Set-Cookie", "b=2")
		w.Header().Set("X-Long", strings.Repeat("v", 10000)) // longer than the reader's buffer
		io.WriteString(w, "ok")
	})
	f := newFixture(t, ProxyOptions{}, Route{Domain: "h.test", Upstreams: addrs(up)})

	resp, body := f.do(t, "GET", "h.test", "/", nil,
		"X-Forwarded-For", "10.0.0.1", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "evil.test",
		"X-Request-Id", "abc-123", "Connection", "X-Secret", "X-Secret", "1",
		"Proxy-Authorization", "Basic eA==", "Te", "trailers", "X-Keep", "me")
	if body != "ok" {
		t.Fatalf("body %q", body)
	}
	if seenHost != "h.test" {
		t.Errorf("instance got Host %q", seenHost)
	}
	for k, want := range map[string]string{
		"X-Forwarded-For":   "10.0.0.1, 127.0.0.1",
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Host":  "h.test",
		"X-Request-Id":      "abc-123",
		"X-Keep":            "me",
	} {
		if got := strings.Join(seen[k], ","); got != want {
			t.Errorf("instance got %s %q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"X-Secret", "Proxy-Authorization", "Te", "Connection", "Keep-Alive"} {
		if v, ok := seen[k]; ok {
			t.Errorf("hop-by-hop %s reached the instance: %q", k, v)
		}
	}
	if resp.Header.Get("X-Request-Id") != "abc-123" {
		t.Errorf("response X-Request-Id %q", resp.Header.Get("X-Request-Id"))
	}
	for _, k := range []string{"X-Hidden", "Keep-Alive"} {
		if v, ok := resp.Header[k]; ok {
			t.Errorf("hop-by-hop %s reached the client: %q", k, v)
		}
	}
	if got := resp.Header["Set-Cookie"]; len(got) != 2 || got[0] != "a=1" || got[1] != "b=2" {
		t.Errorf("Set-Cookie %q", got)
	}
	if len(resp.Header.Get("X-Long")) != 10000 {
		t.Errorf("long header: %d bytes", len(resp.Header.Get("X-Long")))
	}

	// Without an id, one is made, sent upstream and returned.
	resp, _ = f.do(t, "GET", "h.test", "/", nil)
	id := resp.Header.Get("X-Request-Id")
	if !strings.HasPrefix(id, "req-") || len(id) != 20 || seen.Get("X-Request-Id") != id {
		t.Errorf("made id %q, instance got %q", id, seen.Get("X-Request-Id"))
	}
}

// --- WebSocket and HTTP/2 ---

func TestWebSocketSurvivesRouteChanges(t *testing.T) {
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, append([]byte("echo "), msg...)); err != nil {
				return
			}
		}
	})
	closed := closedAddr(t)
	route := func(to string) []Route {
		return []Route{{Domain: "ws.test", Component: "chat/ws", Upstreams: addrs(to)}}
	}
	f := newFixture(t, ProxyOptions{}, route(up)...)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(f.url, "http")+"/chat", &websocket.DialOptions{Host: "ws.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("no request id on the 101")
	}
	for i := 0; i < 100; i++ {
		// Routes change, even away from this instance: the open
		// connection stays where it is.
		if i%2 == 0 {
			f.p.SetRoutes(route(closed))
		} else {
			f.p.SetRoutes(route(up))
		}
		msg := "message " + strconv.Itoa(i)
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		_, got, err := c.Read(ctx)
		if err != nil || string(got) != "echo "+msg {
			t.Fatalf("read %d: %q %v", i, got, err)
		}
	}
	c.Close(websocket.StatusNormalClosure, "")
	recs := f.recs.waitFor(t, 1)
	if recs[0].Status != 101 || recs[0].BytesIn == 0 || recs[0].BytesOut == 0 {
		t.Errorf("record %+v", recs[0])
	}
}

func TestHTTP2ToHTTP1Instances(t *testing.T) {
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s te=%v len=%d", r.Proto, r.Method, r.Host, r.TransferEncoding, len(b))
	})
	p := NewProxyWith(ProxyOptions{})
	defer p.Close()
	p.SetRoutes([]Route{{Domain: "h2.test", Upstreams: addrs(up)}})
	checkGoroutines(t)

	plainDial := func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	var native http.Protocols
	native.SetUnencryptedHTTP2(true)

	for _, tc := range []struct {
		name   string
		server func() *httptest.Server
		client func(*httptest.Server) *http.Client
	}{
		{"h2c x/net", func() *httptest.Server {
			return httptest.NewServer(h2c.NewHandler(p, &http2.Server{}))
		}, func(*httptest.Server) *http.Client {
			return &http.Client{Transport: &http2.Transport{AllowHTTP: true, DialTLSContext: plainDial}}
		}},
		{"h2c net/http", func() *httptest.Server {
			s := httptest.NewUnstartedServer(p)
			var protos http.Protocols
			protos.SetHTTP1(true)
			protos.SetUnencryptedHTTP2(true)
			s.Config.Protocols = &protos
			s.Start()
			return s
		}, func(*httptest.Server) *http.Client {
			return &http.Client{Transport: &http.Transport{Protocols: &native}}
		}},
		{"h2 over TLS", func() *httptest.Server {
			s := httptest.NewUnstartedServer(p)
			s.EnableHTTP2 = true
			s.StartTLS()
			return s
		}, func(s *httptest.Server) *http.Client { return s.Client() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			front := tc.server()
			defer front.Close()
			client := tc.client(front)
			defer client.CloseIdleConnections()
			for _, body := range []io.Reader{nil, strings.NewReader("hello"), io.MultiReader(strings.NewReader("stre"), strings.NewReader("amed"))} {
				method := "GET"
				if body != nil {
					method = "POST"
				}
				req, _ := http.NewRequest(method, front.URL+"/x", body)
				req.Host = "h2.test"
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.ProtoMajor != 2 {
					t.Errorf("client spoke %s", resp.Proto)
				}
				if !strings.HasPrefix(string(b), "HTTP/1.1 "+method+" h2.test") || body != nil && !strings.HasSuffix(string(b), "len=5") && !strings.HasSuffix(string(b), "len=8") {
					t.Errorf("%s: instance saw %q", method, b)
				}
				if resp.Header.Get("X-Request-Id") == "" {
					t.Errorf("no request id")
				}
			}
		})
	}
}

// --- bodies ---

func TestChunkedBodiesAndTrailers(t *testing.T) {
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Trailer", "X-Sum")
		fmt.Fprintf(w, "te=%v len=%d;", r.TransferEncoding, len(b))
		w.(http.Flusher).Flush()
		w.Write(b)
		sum := sha256.Sum256(b)
		w.Header().Set("X-Sum", hex.EncodeToString(sum[:]))
	})
	f := newFixture(t, ProxyOptions{}, Route{Domain: "c.test", Upstreams: addrs(up)})
	data := strings.Repeat("0123456789", 10000)
	req, _ := http.NewRequest("PUT", f.url+"/", io.MultiReader(strings.NewReader(data[:500]), strings.NewReader(data[500:])))
	req.Host = "c.test"
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := "te=[chunked] len=100000;" + data
	if string(b) != want {
		t.Errorf("body %q..., want %q...", b[:min(len(b), 40)], want[:40])
	}
	if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("answer not chunked: %v", resp.TransferEncoding)
	}
	sum := sha256.Sum256([]byte(data))
	if resp.Trailer.Get("X-Sum") != hex.EncodeToString(sum[:]) {
		t.Errorf("trailer %q", resp.Trailer)
	}
	recs := f.recs.waitFor(t, 1)
	if recs[0].BytesIn != int64(len(data)) || recs[0].BytesOut != int64(len(want)) {
		t.Errorf("record counts %d in, %d out", recs[0].BytesIn, recs[0].BytesOut)
	}
}

// hashReader is size deterministic bytes, hashed as they are read.
type hashReader struct {
	left int64
	n    byte
	h    interface {
		io.Writer
		Sum([]byte) []byte
	}
}

func newHashReader(size int64) *hashReader { return &hashReader{left: size, h: sha256.New()} }

func (r *hashReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	for i := range p {
		p[i] = r.n
		r.n = r.n*31 + 7
	}
	r.left -= int64(len(p))
	r.h.Write(p)
	return len(p), nil
}

func (r *hashReader) sum() string { return hex.EncodeToString(r.h.Sum(nil)) }

func TestLargeBodiesStream(t *testing.T) {
	const size = 64 << 20
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/upload":
			h := sha256.New()
			n, _ := io.Copy(h, r.Body)
			fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
		case "/download":
			src := newHashReader(size)
			w.Header().Set("Content-Length", strconv.Itoa(size))
			io.Copy(w, src)
		case "/download-chunked":
			io.Copy(struct{ io.Writer }{w}, newHashReader(size))
		case "/duplex":
			// Echoes each piece as it comes: only works if both bodies stream.
			rc := http.NewResponseController(w)
			rc.EnableFullDuplex()
			w.WriteHeader(200)
			rc.Flush()
			buf := make([]byte, 64<<10)
			for {
				n, err := r.Body.Read(buf)
				if n > 0 {
					w.Write(buf[:n])
					rc.Flush()
				}
				if err != nil {
					return
				}
			}
		}
	})
	f := newFixture(t, ProxyOptions{}, Route{Domain: "big.test", Upstreams: addrs(up)})

	src := newHashReader(size)
	req, _ := http.NewRequest("POST", f.url+"/upload", src)
	req.ContentLength = size
	req.Host = "big.test"
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("%d %s", size, src.sum()); string(b) != want {
		t.Errorf("upload: instance got %q, want %q", b, want)
	}

	for _, path := range []string{"/download", "/download-chunked"} {
		req, _ := http.NewRequest("GET", f.url+path, nil)
		req.Host = "big.test"
		resp, err := f.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		n, err := io.Copy(h, resp.Body)
		resp.Body.Close()
		if want := newHashReader(size); err != nil || n != size || hex.EncodeToString(h.Sum(nil)) != func() string { io.Copy(io.Discard, want); return want.sum() }() {
			t.Errorf("%s: %d bytes, %v", path, n, err)
		}
	}

	// Both ways at once: each piece comes back before the next is sent.
	pr, pw := io.Pipe()
	defer pw.Close()
	req, _ = http.NewRequest("POST", f.url+"/duplex", pr)
	req.Host = "big.test"
	type result struct {
		resp *http.Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := f.client.Do(req)
		done <- result{resp, err}
	}()
	var res result
	for i := 0; i < 20; i++ {
		piece := []byte(fmt.Sprintf("piece %02d;", i))
		if _, err := pw.Write(piece); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			select {
			case res = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("no answer head while the body streams")
			}
			if res.err != nil {
				t.Fatal(res.err)
			}
		}
		got := make([]byte, len(piece))
		if _, err := io.ReadFull(res.resp.Body, got); err != nil || !bytes.Equal(got, piece) {
			t.Fatalf("piece %d: %q %v", i, got, err)
		}
	}
	pw.Close()
	rest, _ := io.ReadAll(res.resp.Body)
	res.resp.Body.Close()
	if len(rest) != 0 {
		t.Errorf("after the pieces: %q", rest)
	}
}

// --- failures in flight ---

func TestZeroFailuresWhileInstancesChange(t *testing.T) {
	checkGoroutines(t)
	var current atomic.Pointer[[]string]
	start := func(name string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, name)
		}))
	}
	old := start("0")
	set := func(s ...*httptest.Server) {
		a := make([]string, len(s))
		for i, srv := range s {
			a[i] = srv.Listener.Addr().String()
		}
		current.Store(&a)
	}
	set(old)
	routes := []Route{{Domain: "roll.test", Component: "shop/web", Upstreams: func() []string { return *current.Load() }}}
	f := newFixture(t, ProxyOptions{}, routes...)

	stop := make(chan struct{})
	flipped := make(chan struct{})
	go func() {
		defer close(flipped)
		for i := 1; i <= 50; i++ {
			next := start(strconv.Itoa(i))
			set(old, next)
			f.p.SetRoutes(routes)
			time.Sleep(3 * time.Millisecond)
			// The old instance stops before the gateway hears of it:
			// requests still sent its way must go to the next one.
			old.Close()
			time.Sleep(3 * time.Millisecond)
			set(next)
			f.p.SetRoutes(routes)
			old = next
		}
		<-stop
		old.Close()
	}()

	var failures atomic.Int64
	var sent atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 250; i++ {
				req, _ := http.NewRequest("GET", f.url+"/", nil)
				req.Host = "roll.test"
				resp, err := f.client.Do(req)
				sent.Add(1)
				if err != nil {
					failures.Add(1)
					t.Errorf("request: %v", err)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failures.Add(1)
					t.Errorf("%d %s: %s", resp.StatusCode, resp.Header.Get("X-Berth-Error"), b)
				}
				time.Sleep(100 * time.Microsecond)
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-flipped
	if failures.Load() != 0 {
		t.Errorf("%d of %d requests failed", failures.Load(), sent.Load())
	}
	recs := f.recs.waitFor(t, 2000)
	if len(recs) != 2000 {
		t.Errorf("%d records for 2000 requests", len(recs))
	}
}

func TestStaleKeepAliveConnections(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %d", r.Method, len(b))
	}))
	defer srv.Close()
	f := newFixture(t, ProxyOptions{}, Route{Domain: "ka.test", Upstreams: addrs(srv.Listener.Addr().String())})
	for i, tc := range []struct {
		method, body, want string
	}{
		{"GET", "", "GET 0"},
		{"GET", "", "GET 0"},
		{"POST", "hello", "POST 5"},
		{"POST", "", "POST 0"},
		{"DELETE", "", "DELETE 0"},
	} {
		// The instance closes the connection the gateway keeps (its idle
		// timeout, a restart): the next request must not fail for it.
		srv.CloseClientConnections()
		time.Sleep(20 * time.Millisecond)
		var body io.Reader
		if tc.body != "" {
			body = strings.NewReader(tc.body)
		}
		resp, got := f.do(t, tc.method, "ka.test", "/", body)
		if resp.StatusCode != 200 || got != tc.want {
			t.Errorf("%d %s: %d %q", i, tc.method, resp.StatusCode, got)
		}
	}
}

func TestKeepAliveReusesConnections(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	f := newFixture(t, ProxyOptions{}, Route{Domain: "ka.test", Upstreams: addrs(srv.Listener.Addr().String())})
	for i := 0; i < 50; i++ {
		f.do(t, "GET", "ka.test", "/", nil)
		f.do(t, "POST", "ka.test", "/", strings.NewReader("x"))
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("100 sequential requests took %d connections", n)
	}
}

func TestClientGoneStopsTheInstanceRequest(t *testing.T) {
	cancelled := make(chan struct{})
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			close(cancelled)
		case <-time.After(5 * time.Second):
		}
	})
	f := newFixture(t, ProxyOptions{}, Route{Domain: "gone.test", Upstreams: addrs(up)})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", f.url+"/", nil)
	req.Host = "gone.test"
	if _, err := f.client.Do(req); err == nil {
		t.Fatal("no error")
	}
	select {
	case <-cancelled:
	case <-time.After(3 * time.Second):
		t.Fatal("the instance still waits for a client that left")
	}
	recs := f.recs.waitFor(t, 1)
	if recs[0].Status != StatusClientClosed || recs[0].Cause != "" {
		t.Errorf("record %+v", recs[0])
	}
}

func TestSendTimeout(t *testing.T) {
	release := make(chan struct{})
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		select { // never reads the body
		case <-release:
		case <-time.After(10 * time.Second):
		}
	})
	defer close(release)
	f := newFixture(t, ProxyOptions{}, Route{Domain: "send.test", Component: "shop/up", Upstreams: addrs(up),
		Timeouts: Timeouts{Send: 300 * time.Millisecond, Read: 20 * time.Second}})
	req, _ := http.NewRequest("POST", f.url+"/", newHashReader(256<<20))
	req.ContentLength = 256 << 20
	req.Host = "send.test"
	start := time.Now()
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 504 || resp.Header.Get("X-Berth-Error") != CauseTimeout || time.Since(start) > 8*time.Second {
		t.Errorf("%d %q after %v", resp.StatusCode, resp.Header.Get("X-Berth-Error"), time.Since(start))
	}
}

func TestConnectTimeout(t *testing.T) {
	// A listener that never accepts, with a backlog of one that the test
	// fills: the kernel drops the gateway's SYNs, so its dial hangs.
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := syscall.Getsockname(fd)
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	for i := 0; i < 2; i++ {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			break // full
		}
		defer c.Close()
	}
	f := newFixture(t, ProxyOptions{}, Route{Domain: "hang.test", Component: "a/hang", Upstreams: addrs(addr),
		Timeouts: Timeouts{Connect: 200 * time.Millisecond}})
	start := time.Now()
	resp, _ := f.do(t, "GET", "hang.test", "/", nil)
	if resp.StatusCode != 504 || resp.Header.Get("X-Berth-Error") != CauseTimeout || time.Since(start) > 3*time.Second {
		t.Errorf("%d %q after %v", resp.StatusCode, resp.Header.Get("X-Berth-Error"), time.Since(start))
	}
}

func TestStalledUpload(t *testing.T) {
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	})
	f := newFixture(t, ProxyOptions{}, Route{Domain: "stall.test", Upstreams: addrs(up), Timeouts: Timeouts{Send: 300 * time.Millisecond}})
	c, err := net.Dial("tcp", strings.TrimPrefix(f.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Announces 1000 bytes, sends 10, then waits.
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: stall.test\r\nContent-Length: 1000\r\n\r\n0123456789")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
		t.Errorf("%d, close %v", resp.StatusCode, resp.Close)
	}
	recs := f.recs.waitFor(t, 1)
	if recs[0].Status != http.StatusRequestTimeout || recs[0].BytesIn != 10 {
		t.Errorf("record %+v", recs[0])
	}

	// A body that is not valid chunked encoding is the client's error.
	c2, err := net.Dial("tcp", strings.TrimPrefix(f.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	io.WriteString(c2, "POST / HTTP/1.1\r\nHost: stall.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n")
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err = http.ReadResponse(bufio.NewReader(c2), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !resp.Close {
		t.Errorf("bad chunking: %d, close %v", resp.StatusCode, resp.Close)
	}
}

func TestEarlyAnswer(t *testing.T) {
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "who are you", http.StatusUnauthorized) // without reading the body
	})
	f := newFixture(t, ProxyOptions{}, Route{Domain: "early.test", Upstreams: addrs(up)})
	req, _ := http.NewRequest("POST", f.url+"/", newHashReader(16<<20))
	req.ContentLength = 16 << 20
	req.Host = "early.test"
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 || string(b) != "who are you\n" {
		t.Errorf("%d %q", resp.StatusCode, b)
	}
	// And the gateway still serves.
	if resp, _ := f.do(t, "GET", "early.test", "/", nil); resp.StatusCode != 401 {
		t.Errorf("next: %d", resp.StatusCode)
	}
}

func TestInstanceBreaksOffMidAnswer(t *testing.T) {
	short := rawBackend(t, func(c net.Conn, head string) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly this")
	})
	chunked := rawBackend(t, func(c net.Conn, head string) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
	})
	garbage := rawBackend(t, func(c net.Conn, head string) {
		io.WriteString(c, "SSH-2.0-OpenSSH_9.2\r\n\r\n")
	})
	f := newFixture(t, ProxyOptions{},
		Route{Domain: "short.test", Component: "a/short", Upstreams: addrs(short)},
		Route{Domain: "chunked.test", Component: "a/chunked", Upstreams: addrs(chunked)},
		Route{Domain: "garbage.test", Component: "a/garbage", Upstreams: addrs(garbage)},
	)
	for _, host := range []string{"short.test", "chunked.test"} {
		req, _ := http.NewRequest("GET", f.url+"/", nil)
		req.Host = host
		resp, err := f.client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Errorf("%s: a broken-off answer reached the client as complete", host)
		}
	}
	resp, body := f.do(t, "GET", "garbage.test", "/", nil)
	if resp.StatusCode != 502 || !strings.Contains(body, "not HTTP") {
		t.Errorf("garbage: %d %s", resp.StatusCode, body)
	}
	recs := f.recs.waitFor(t, 3)
	for _, r := range recs {
		if r.Cause != CauseReset || (r.Host != "garbage.test" && r.Status != 200) {
			t.Errorf("record %s: %d %q", r.Host, r.Status, r.Cause)
		}
	}
}

func TestAnswerFraming(t *testing.T) {
	raw := rawBackend(t, func(c net.Conn, head string) {
		path := strings.Fields(head)[1]
		switch path {
		case "/head":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n")
		case "/304":
			io.WriteString(c, "HTTP/1.1 304 Not Modified\r\nEtag: \"x\"\r\n\r\n")
		case "/close":
			io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
		case "/interim":
			io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	var sawExpect atomic.Value
	echo := backend(t, func(w http.ResponseWriter, r *http.Request) {
		sawExpect.Store(r.Header.Get("Expect"))
		io.Copy(w, r.Body)
	})
	f := newFixture(t, ProxyOptions{},
		Route{Domain: "raw.test", Upstreams: addrs(raw)},
		Route{Domain: "echo.test", Upstreams: addrs(echo)},
	)
	resp, body := f.do(t, "HEAD", "raw.test", "/head", nil)
	if resp.StatusCode != 200 || resp.ContentLength != 42 || body != "" {
		t.Errorf("HEAD: %d length %d %q", resp.StatusCode, resp.ContentLength, body)
	}
	resp, body = f.do(t, "GET", "raw.test", "/304", nil)
	if resp.StatusCode != 304 || resp.Header.Get("Etag") != `"x"` || body != "" {
		t.Errorf("304: %d %q %q", resp.StatusCode, resp.Header.Get("Etag"), body)
	}
	resp, body = f.do(t, "GET", "raw.test", "/close", nil)
	if resp.StatusCode != 200 || body != "until the end" {
		t.Errorf("HTTP/1.0 until close: %d %q", resp.StatusCode, body)
	}
	resp, body = f.do(t, "GET", "raw.test", "/interim", nil)
	if resp.StatusCode != 200 || body != "ok" || resp.Header.Get("Link") != "" {
		t.Errorf("after 103: %d %q %q", resp.StatusCode, body, resp.Header.Get("Link"))
	}

	// The client waits for 100 Continue; the gateway's server sends it
	// when the body is read, and the instance is not asked to.
	tr := &http.Transport{ExpectContinueTimeout: 10 * time.Second}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("PUT", f.url+"/", strings.NewReader("continued"))
	req.Host = "echo.test"
	req.Header.Set("Expect", "100-continue")
	start := time.Now()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "continued" || sawExpect.Load() != "" || time.Since(start) > 5*time.Second {
		t.Errorf("100-continue: %q, instance saw Expect %q, after %v", b, sawExpect.Load(), time.Since(start))
	}
}

// --- observer ---

func TestObserverOncePerRequest(t *testing.T) {
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Length", "5")
		w.WriteHeader(201)
		io.WriteString(w, strconv.Itoa(int(10000+n)))
	})
	closed := closedAddr(t)
	f := newFixture(t, ProxyOptions{},
		Route{ID: "r1", Domain: "obs.test", Component: "team/obs", Upstreams: addrs(up)},
		Route{ID: "r2", Domain: "refused.test", Component: "team/down", Upstreams: addrs(closed)},
	)
	resp, _ := f.do(t, "POST", "obs.test", "/p?q", strings.NewReader("1234567"), "X-Request-Id", "rid-1")
	if resp.StatusCode != 201 {
		t.Fatal(resp.Status)
	}
	f.do(t, "GET", "nowhere.test", "/x", nil)
	resp404 := f.recs.waitFor(t, 2)[1]
	f.do(t, "GET", "refused.test", "/y", nil)
	recs := f.recs.waitFor(t, 3)
	if len(recs) != 3 {
		t.Fatalf("%d records for 3 requests", len(recs))
	}
	r := recs[0]
	if r.Status != 201 || r.BytesIn != 7 || r.BytesOut != 5 || r.Route == nil || r.Route.ID != "r1" || r.Upstream != up ||
		r.RequestID != "rid-1" || r.Method != "POST" || r.Host != "obs.test" || r.Path != "/p" || r.Proto != "HTTP/1.1" ||
		r.Cause != "" || r.Duration <= 0 || r.Time.IsZero() || !strings.HasPrefix(r.Remote, "127.0.0.1:") {
		t.Errorf("proxied: %+v", r)
	}
	if resp404.Status != 404 || resp404.Cause != CauseUnknownHost || resp404.Route != nil || resp404.Upstream != "" || resp404.BytesOut == 0 {
		t.Errorf("unknown host: %+v", resp404)
	}
	r = recs[2]
	if r.Status != 502 || r.Cause != CauseRefused || r.Route == nil || r.Route.ID != "r2" || r.Upstream != closed {
		t.Errorf("refused: %+v", r)
	}
}

// --- unit ---

func TestReadHead(t *testing.T) {
	for _, tc := range []struct {
		in      string
		status  int
		mode    bodyMode
		length  int64
		close   bool
		headers string
		err     bool
	}{
		{in: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\ncontent-type: text/plain\r\n\r\nabc", status: 200, mode: bodyLength, length: 3, headers: "Content-Length=3 Content-Type=text/plain"},
		{in: "HTTP/1.1 204 No Content\r\n\r\n", status: 204, mode: bodyNone, length: -1},
		{in: "HTTP/1.0 200 OK\r\n\r\nbody", status: 200, mode: bodyUntilClose, length: -1, close: true},
		{in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 9\r\n\r\n", status: 200, mode: bodyChunked, length: -1},
		{in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", status: 200, mode: bodyUntilClose, length: -1, close: true},
		{in: "HTTP/1.1 200 OK\r\nConnection: close, X-A\r\nX-A: 1\r\nX-B: 2\r\nContent-Length: 0\r\n\r\n", status: 200, mode: bodyNone, length: 0, close: true, headers: "Content-Length=0 X-B=2"},
		{in: "HTTP/1.1 200\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", err: true},
		{in: "HTTP/1.1 200 OK\r\n folded: x\r\n\r\n", err: true},
		{in: "HTTP/1.1 200 OK\r\nbad name: x\r\n\r\n", err: true},
		{in: "HTTP/2 200\r\n\r\n", err: true},
		{in: "HTTP/1.1 200 OK\r\nX: 1\r\n", err: true},
	} {
		h := http.Header{}
		var hd respHead
		err := readHead(bufio.NewReaderSize(strings.NewReader(tc.in), 16), h, &hd, nil)
		if (err != nil) != tc.err {
			t.Errorf("%q: error %v", tc.in, err)
			continue
		}
		if err != nil {
			continue
		}
		var got []string
		for k, v := range h {
			got = append(got, k+"="+strings.Join(v, ","))
		}
		slicesSort(got)
		if hd.status != tc.status || hd.bodyMode(false) != tc.mode || hd.length != tc.length || hd.close != tc.close || strings.Join(got, " ") != tc.headers {
			t.Errorf("%q: %+v mode %d headers %q", tc.in, hd, hd.bodyMode(false), strings.Join(got, " "))
		}
	}
}

func slicesSort(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func TestCanonicalKey(t *testing.T) {
	for in, want := range map[string]string{
		"content-type": "Content-Type", "CONTENT-LENGTH": "Content-Length", "x-request-id": "X-Request-Id",
		"X-Custom-Thing": "X-Custom-Thing", "etag": "Etag", "sec-websocket-accept": "Sec-Websocket-Accept",
	} {
		if got, ok := canonicalKey([]byte(in)); !ok || got != want {
			t.Errorf("%q: %q %v", in, got, ok)
		}
	}
	for _, bad := range []string{"a b", "a:b", "", "é"} {
		if _, ok := canonicalKey([]byte(bad)); ok && bad != "" {
			t.Errorf("%q accepted", bad)
		}
	}
}

// BenchmarkProxy measures a proxied GET over loopback, both sides
// keep-alive, as the gateway bench does with wrk.
func BenchmarkProxy(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1024)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	defer up.Close()
	p := NewProxyWith(ProxyOptions{})
	defer p.Close()
	p.SetRoutes([]Route{{Domain: "bench.test", Upstreams: addrs(up.Listener.Addr().String())}})
	front := httptest.NewServer(p)
	defer front.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", front.URL+"/", nil)
			req.Host = "bench.test"
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

// TestProxyAllocations keeps the proxied path's allocations in check (the
// server's and the instance's are not counted: ServeHTTP is called
// directly).
func TestProxyAllocations(t *testing.T) {
	// An instance that allocates nothing itself: it answers every head
	// with the same bytes.
	answer := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Mon, 02 Jan 2006 15:04:05 GMT\r\nContent-Length: 1024\r\n\r\n" + strings.Repeat("x", 1024))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(line) == 2 {
				c.Write(answer)
			}
		}
	}()
	p := NewProxyWith(ProxyOptions{})
	defer p.Close()
	p.SetRoutes([]Route{{Domain: "a.test", Upstreams: addrs(ln.Addr().String())}})
	req := httptest.NewRequest("GET", "http://a.test/", nil)
	req.RemoteAddr = "127.0.0.1:1234"
	w := &discardWriter{h: http.Header{}}
	allocs := testing.AllocsPerRun(200, func() {
		clear(w.h)
		p.ServeHTTP(w, req)
		if w.status != 200 {
			t.Fatalf("status %d", w.status)
		}
	})
	t.Logf("%.1f allocations a request", allocs)
	if allocs > 4 {
		t.Errorf("%.1f allocations a request", allocs)
	}
}

type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(s int)           { w.status = s }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
