package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
)

// fixtureNetHTTP makes newFixture serve with net/http's server alone, as
// Config.NetHTTPOnly does; by default fixtures use the fast path.
var fixtureNetHTTP = false

type front struct {
	URL   string
	fs    *fastServer // nil with net/http alone
	close func()
}

func (f *front) Close() { f.close() }

// newFront serves p as the gateway's plain listener does.
func newFront(t *testing.T, p *Proxy) *front {
	t.Helper()
	if fixtureNetHTTP {
		s := httptest.NewServer(p)
		return &front{URL: s.URL, close: s.Close}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: p, Protocols: &protos, ReadHeaderTimeout: fastHeaderTimeout, IdleTimeout: fastIdleTimeout, ErrorLog: quietLog()}
	fs := newFastServer(p, srv, ln)
	served := make(chan struct{}, 2)
	go func() { srv.Serve(fs.handoff); served <- struct{}{} }()
	go func() { fs.serve(); served <- struct{}{} }()
	return &front{URL: "http://" + ln.Addr().String(), fs: fs, close: func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		fs.shutdown(ctx)
		if srv.Shutdown(ctx) != nil {
			srv.Close()
		}
		<-served
		<-served
	}}
}

// fastFixture is a proxy with one route to an echoing backend, behind the
// fast path.
type fastFixture struct {
	p     *Proxy
	front *front
	addr  string // host:port of the front
	recs  *records
}

func newFastFixture(t *testing.T, routes ...Route) *fastFixture {
	t.Helper()
	checkGoroutines(t)
	f := &fastFixture{recs: &records{}}
	f.p = NewProxyWith(ProxyOptions{Observer: f.recs})
	if len(routes) == 0 {
		up := backend(t, echoHandler)
		routes = []Route{{Domain: "app.test", Path: "/", Component: "team/app", Port: 80, Upstreams: addrs(up)}}
	}
	f.p.SetRoutes(routes)
	f.front = newFront(t, f.p)
	f.addr = strings.TrimPrefix(f.front.URL, "http://")
	t.Cleanup(func() {
		f.front.Close()
		f.p.Close()
	})
	return f
}

// echoHandler answers with what it got, as JSON.
func echoHandler(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/chunked" {
		w.Write([]byte("part one;"))
		w.(http.Flusher).Flush()
		w.Write([]byte("part two"))
		return
	}
	b, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"method": r.Method, "uri": r.RequestURI, "host": r.Host, "body": string(b),
		"xff": r.Header.Get("X-Forwarded-For"), "xfp": r.Header.Get("X-Forwarded-Proto"), "xfh": r.Header.Get("X-Forwarded-Host"),
		"rid": r.Header.Get("X-Request-Id"), "keep": r.Header.Get("Keep-Alive"), "custom": r.Header.Get("X-Custom"),
		"cc": r.Header.Get("Cache-Control"),
	})
}

func (f *fastFixture) dial(t *testing.T) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

func readResp(t *testing.T, br *bufio.Reader, method string) (*http.Response, map[string]any, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	for err == nil && resp.StatusCode < 200 {
		resp, err = http.ReadResponse(br, &http.Request{Method: method})
	}
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	return resp, m, string(b)
}

func TestFastPathKeepAliveAndPipelining(t *testing.T) {
	f := newFastFixture(t)
	c, br := f.dial(t)
	// Three requests in one write, the second with a body, the third
	// with its own request id; answers come in order.
	fmt.Fprintf(c, "GET /one?x=1 HTTP/1.1\r\nHost: app.test\r\nKeep-Alive: 300\r\nConnection: keep-alive, X-Custom\r\nX-Custom: drop\r\n\r\n"+
		"POST /two HTTP/1.1\r\nHost: app.test:80\r\nContent-Length: 5\r\n\r\nhello"+
		"GET /three HTTP/1.1\r\nhost: APP.test\r\nx-request-id: mine\r\nPragma: no-cache\r\n\r\n")
	resp, m, _ := readResp(t, br, "GET")
	if resp.StatusCode != 200 || m["uri"] != "/one?x=1" || m["method"] != "GET" || m["host"] != "app.test" {
		t.Fatalf("first: %d %v", resp.StatusCode, m)
	}
	if m["xff"] != "127.0.0.1" || m["xfp"] != "http" || m["xfh"] != "app.test" || m["keep"] != "" || m["custom"] != "" {
		t.Fatalf("forwarded/hop-by-hop fields: %v", m)
	}
	if rid := resp.Header.Get("X-Request-Id"); !strings.HasPrefix(rid, "req-") || rid != m["rid"] {
		t.Fatalf("request id %q, instance saw %v", rid, m["rid"])
	}
	if resp.Header.Get("Date") == "" || resp.Close {
		t.Fatalf("header %v close %v", resp.Header, resp.Close)
	}
	resp, m, _ = readResp(t, br, "POST")
	if resp.StatusCode != 200 || m["body"] != "hello" || m["host"] != "app.test:80" || resp.Close {
		t.Fatalf("second: %d %v", resp.StatusCode, m)
	}
	resp, m, _ = readResp(t, br, "GET")
	if resp.StatusCode != 200 || m["rid"] != "mine" || resp.Header.Get("X-Request-Id") != "mine" || m["cc"] != "no-cache" {
		t.Fatalf("third: %d %v %v", resp.StatusCode, m, resp.Header)
	}
	// The connection stays open for more.
	fmt.Fprintf(c, "GET /chunked HTTP/1.1\r\nHost: app.test\r\n\r\n")
	resp, _, body := readResp(t, br, "GET")
	if body != "part one;part two" {
		t.Fatalf("chunked: %q", body)
	}
	if n := f.front.fs.served.Load(); n != 4 {
		t.Fatalf("fast path served %d, want 4", n)
	}
	if f.front.fs.handed.Load() != 0 {
		t.Fatal("handed over")
	}
}

func TestFastPathHEADAndHTTP10(t *testing.T) {
	f := newFastFixture(t)
	c, br := f.dial(t)
	fmt.Fprintf(c, "HEAD /h HTTP/1.1\r\nHost: app.test\r\n\r\n")
	resp, _, body := readResp(t, br, "HEAD")
	if resp.StatusCode != 200 || body != "" || resp.ContentLength <= 0 {
		t.Fatalf("HEAD: %d %q %d", resp.StatusCode, body, resp.ContentLength)
	}
	// 1.0 with keep-alive: kept when the length is known.
	fmt.Fprintf(c, "GET /ka HTTP/1.0\r\nHost: app.test\r\nConnection: keep-alive\r\n\r\n")
	resp, m, _ := readResp(t, br, "GET")
	if resp.Proto != "HTTP/1.0" || m["uri"] != "/ka" || resp.Header.Get("Connection") != "keep-alive" {
		t.Fatalf("1.0 keep-alive: %s %v %v", resp.Proto, m, resp.Header)
	}
	// 1.0 without: closed after the answer.
	fmt.Fprintf(c, "GET /close HTTP/1.0\r\nHost: app.test\r\n\r\n")
	resp, m, _ = readResp(t, br, "GET")
	if resp.StatusCode != 200 || m["uri"] != "/close" {
		t.Fatalf("1.0: %d %v", resp.StatusCode, m)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("1.0 connection not closed: %v", err)
	}
	// Connection: close on 1.1.
	c, br = f.dial(t)
	fmt.Fprintf(c, "GET /c HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
	resp, _, _ = readResp(t, br, "GET")
	if !resp.Close {
		t.Fatal("no Connection: close")
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("connection not closed: %v", err)
	}
	if f.front.fs.served.Load() != 4 {
		t.Fatalf("served %d", f.front.fs.served.Load())
	}
}

func TestFastPathHandsOver(t *testing.T) {
	// A backend that switches protocols and echoes.
	up := rawBackend(t, func(c net.Conn, head string) {
		if !strings.Contains(head, "Upgrade: echo") {
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		io.Copy(c, c)
	})
	f := newFastFixture(t, Route{Domain: "app.test", Path: "/", Component: "team/app", Port: 80, Upstreams: addrs(up)},
		Route{Domain: "secure.test", Path: "/", Component: "team/s", Port: 80, Upstreams: addrs(up), RedirectHTTPS: true})

	t.Run("upgrade", func(t *testing.T) {
		c, br := f.dial(t)
		fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("%v %v", resp, err)
		}
		fmt.Fprintf(c, "ping")
		b := make([]byte, 4)
		if _, err := io.ReadFull(br, b); err != nil || string(b) != "ping" {
			t.Fatalf("%q %v", b, err)
		}
	})
	t.Run("h2c", func(t *testing.T) {
		var protos http.Protocols
		protos.SetUnencryptedHTTP2(true)
		tr := &http.Transport{Protocols: &protos}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest("GET", f.front.URL+"/x", nil)
		req.Host = "app.test"
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || string(b) != "ok" {
			t.Fatalf("%s %q", resp.Proto, b)
		}
	})
	t.Run("after fast requests", func(t *testing.T) {
		// Some requests on the fast path, then one it does not take
		// (Expect), then a plain one again: all answered in order.
		c, br := f.dial(t)
		fmt.Fprintf(c, "GET /a HTTP/1.1\r\nHost: app.test\r\n\r\n"+
			"PUT /b HTTP/1.1\r\nHost: app.test\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nhi"+
			"GET /c HTTP/1.1\r\nHost: unknown.test\r\nAccept: text/html\r\n\r\n"+
			"GET /d HTTP/1.1\r\nHost: secure.test\r\n\r\n")
		for i, want := range []int{200, 200, 404, 308} {
			resp, _, body := readResp(t, br, "GET")
			if resp.StatusCode != want {
				t.Fatalf("answer %d: %d %q", i, resp.StatusCode, body)
			}
			if want == 404 && (resp.Header.Get("X-Berth-Error") != CauseUnknownHost || !strings.Contains(resp.Header.Get("Content-Type"), "html")) {
				t.Fatalf("unknown host page: %v", resp.Header)
			}
		}
	})
	t.Run("malformed", func(t *testing.T) {
		for _, head := range []string{
			"GET / HTTP/1.1\r\nHost: app.test\r\nBad Header\r\n\r\n",
			"GET / HTTP/1.1\r\nHost: app.test\r\nContent-Length: x\r\n\r\n",
			"GET / HTTP/1.1\r\n\r\n", // no Host
			"GET / HTTP/1.1\r\nHost: app.test\r\nHost: app.test\r\n\r\n",
		} {
			c, br := f.dial(t)
			fmt.Fprint(c, head)
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != 400 {
				t.Fatalf("%q: %v %v", head, resp, err)
			}
		}
		// A head longer than the fast path's buffer.
		c, br := f.dial(t)
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: app.test\r\nX-Long: %s\r\n\r\n", strings.Repeat("a", 3*fastBufSize))
		resp, _, body := readResp(t, br, "GET")
		if resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("long head: %d %q", resp.StatusCode, body)
		}
	})
	if f.front.fs.handed.Load() < 8 {
		t.Fatalf("handed over %d connections", f.front.fs.handed.Load())
	}
}

func TestFastPathHeaderTimeout(t *testing.T) {
	old := fastHeaderTimeout
	fastHeaderTimeout = 200 * time.Millisecond
	t.Cleanup(func() { fastHeaderTimeout = old }) // after the fixture's
	f := newFastFixture(t)
	c, br := f.dial(t)
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: app")
	start := time.Now()
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("slow head: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("closed after %v", d)
	}
}

func TestFastPathObserverAndFailures(t *testing.T) {
	refused := closedAddr(t)
	up := backend(t, echoHandler)
	f := newFastFixture(t,
		Route{Domain: "app.test", Path: "/", Component: "team/app", Port: 80, Upstreams: addrs(up)},
		Route{Domain: "down.test", Path: "/", Component: "team/down", Port: 8080, Upstreams: addrs(refused)},
		Route{Domain: "small.test", Path: "/", Component: "team/small", Port: 80, Upstreams: addrs(up), MaxBodyBytes: 3},
		Route{Domain: "limited.test", Path: "/", Component: "team/lim", Port: 80, Upstreams: addrs(up), Limiter: NewRateLimiter(0.001, 1)},
	)
	c, br := f.dial(t)
	fmt.Fprintf(c, "GET /p?q HTTP/1.1\r\nHost: app.test\r\n\r\n")
	resp, _, body := readResp(t, br, "GET")
	recs := f.recs.waitFor(t, 1)
	r := recs[0]
	if r.Status != 200 || r.Method != "GET" || r.Host != "app.test" || r.Path != "/p" || r.Proto != "HTTP/1.1" ||
		r.BytesOut != int64(len(body)) || r.Duration <= 0 || r.Route == nil || r.Upstream != up ||
		r.RequestID != resp.Header.Get("X-Request-Id") || !strings.HasPrefix(r.Remote, "127.0.0.1:") || r.Cause != "" {
		t.Fatalf("record %+v", r)
	}
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 4\r\n\r\nbody")
	readResp(t, br, "POST")
	if r := f.recs.waitFor(t, 2)[1]; r.BytesIn != 4 || r.Method != "POST" {
		t.Fatalf("record %+v", r)
	}

	// Failures answer with the gateway's page, as through net/http.
	for _, tc := range []struct {
		host, accept, body string
		status             int
		cause              string
	}{
		{"down.test", "", "", 502, CauseRefused},
		{"down.test", "text/html", "", 502, CauseRefused},
		{"small.test", "", "toolong", 413, CauseBodyTooLarge},
		{"limited.test", "", "", 200, ""},
		{"limited.test", "", "", 503, CauseRateLimited},
	} {
		req := fmt.Sprintf("POST / HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", tc.host, len(tc.body))
		if tc.accept != "" {
			req += "Accept: " + tc.accept + "\r\n"
		}
		fmt.Fprint(c, req+"\r\n"+tc.body)
		resp, _, body := readResp(t, br, "POST")
		if resp.StatusCode != tc.status || resp.Header.Get("X-Berth-Error") != tc.cause || resp.Header.Get("X-Request-Id") == "" {
			t.Fatalf("%s: %d %v %q", tc.host, resp.StatusCode, resp.Header, body)
		}
		if tc.cause != "" {
			ct := resp.Header.Get("Content-Type")
			if tc.accept == "text/html" && !strings.HasPrefix(ct, "text/html") || tc.accept == "" && ct != "application/json" {
				t.Fatalf("%s: content type %q", tc.host, ct)
			}
		}
		n := len(f.recs.all())
		if rec := f.recs.waitFor(t, n)[n-1]; rec.Status != tc.status || rec.Cause != tc.cause {
			t.Fatalf("%s: record %+v", tc.host, rec)
		}
	}
	if f.front.fs.handed.Load() != 0 {
		t.Fatal("handed over")
	}
}

// TestCoreTestsWithNetHTTPOnly runs the proxy's core tests with net/http's
// server alone (Config.NetHTTPOnly); the rest of the suite runs them
// through the fast path.
func TestCoreTestsWithNetHTTPOnly(t *testing.T) {
	fixtureNetHTTP = true
	defer func() { fixtureNetHTTP = false }()
	for name, test := range map[string]func(*testing.T){
		"EveryErrorSaysWhy": TestEveryErrorSaysWhy, "BodyTooLarge": TestBodyTooLarge,
		"ForwardedAndHopByHopHeaders": TestForwardedAndHopByHopHeaders, "ChunkedBodiesAndTrailers": TestChunkedBodiesAndTrailers,
		"ClientGoneStopsTheInstanceRequest": TestClientGoneStopsTheInstanceRequest, "EarlyAnswer": TestEarlyAnswer,
		"AnswerFraming": TestAnswerFraming, "ObserverOncePerRequest": TestObserverOncePerRequest,
	} {
		t.Run(name, test)
	}
	g := startGateway(t, Config{NetHTTPOnly: true})
	if len(g.fast) != 0 {
		t.Fatal("NetHTTPOnly still uses the fast path")
	}
}

var _ = tls.VersionTLS12

var requestIDs = regexp.MustCompile(`req-[a-z2-7]{16}`)

// TestFastPathAnswersAsNetHTTP sends the same requests through the fast
// path and through net/http's server alone, and compares the answers as
// a client sees them (all but Date and X-Request-Id).
func TestFastPathAnswersAsNetHTTP(t *testing.T) {
	checkGoroutines(t)
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/cl":
			w.Header().Set("Content-Length", "5")
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "hello")
		case "/stream":
			io.WriteString(w, "one")
			w.(http.Flusher).Flush()
			time.Sleep(5 * time.Millisecond)
			io.WriteString(w, "two")
		case "/big":
			io.WriteString(w, strings.Repeat("b", 10000))
		case "/204":
			w.WriteHeader(204)
		case "/304":
			w.Header().Set("Etag", `"x"`)
			w.WriteHeader(304)
		case "/trailer":
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "data")
			w.(http.Flusher).Flush()
			w.Header().Set("X-Sum", "42")
		case "/close":
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		default:
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%s %s %d", r.Method, r.URL, len(b))
		}
	})
	raw := rawBackend(t, func(c net.Conn, head string) {
		switch {
		case strings.Contains(head, "/raw-notype"):
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n<html>hi</html>")
		case strings.Contains(head, "/raw-eof"):
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
		case strings.Contains(head, "/raw-cut"):
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
		}
	})
	recs := &records{}
	p := NewProxyWith(ProxyOptions{Observer: recs})
	p.SetRoutes([]Route{
		{Domain: "app.test", Path: "/", Component: "team/app", Port: 80, Upstreams: addrs(up)},
		{Domain: "app.test", Path: "/raw-notype", Component: "team/raw", Port: 80, Upstreams: addrs(raw)},
		{Domain: "app.test", Path: "/raw-eof", Component: "team/raw", Port: 80, Upstreams: addrs(raw)},
		{Domain: "app.test", Path: "/raw-cut", Component: "team/raw", Port: 80, Upstreams: addrs(raw)},
		{Domain: "down.test", Path: "/", Component: "team/down", Port: 80, Upstreams: addrs(closedAddr(t))},
		{Domain: "none.test", Path: "/", Component: "team/none", Port: 80, Upstreams: addrs()},
		{Domain: "small.test", Path: "/", Component: "team/small", Port: 80, Upstreams: addrs(up), MaxBodyBytes: 2},
	})
	fast := newFront(t, p)
	fixtureNetHTTP = true
	std := newFront(t, p)
	fixtureNetHTTP = false
	t.Cleanup(func() { fast.Close(); std.Close(); p.Close() })

	type answer struct {
		Proto, Status, Body   string
		Header, Trailer       http.Header
		TE                    []string
		Length                int64
		Close, ConnectionOpen bool
	}
	ask := func(f *front, req string) answer {
		c, err := net.Dial("tcp", strings.TrimPrefix(f.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, req)
		br := bufio.NewReader(c)
		method, _, _ := strings.Cut(req, " ")
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			return answer{Status: "error " + err.Error()}
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			b = append(b, " [read error]"...)
		}
		resp.Header.Del("Date")
		resp.Header.Del("X-Request-Id")
		a := answer{Proto: resp.Proto, Status: resp.Status, Body: requestIDs.ReplaceAllString(string(b), "req-ID"), Header: resp.Header, Trailer: resp.Trailer,
			TE: resp.TransferEncoding, Length: resp.ContentLength, Close: resp.Close}
		if !resp.Close && err == nil {
			// Still usable: another request answers.
			io.WriteString(c, "GET /cl HTTP/1.1\r\nHost: app.test\r\n\r\n")
			r2, err := http.ReadResponse(br, nil)
			a.ConnectionOpen = err == nil && r2.StatusCode == 200
		}
		return a
	}
	var reqs []string
	for _, path := range []string{"/cl", "/stream", "/big", "/204", "/304", "/trailer", "/close", "/echo?q=1", "/raw-notype", "/raw-eof", "/raw-cut"} {
		reqs = append(reqs,
			"GET "+path+" HTTP/1.1\r\nHost: app.test\r\n\r\n",
			"HEAD "+path+" HTTP/1.1\r\nHost: app.test\r\n\r\n",
			"GET "+path+" HTTP/1.0\r\nHost: app.test\r\n\r\n",
			"GET "+path+" HTTP/1.0\r\nHost: app.test\r\nConnection: keep-alive\r\n\r\n",
		)
	}
	reqs = append(reqs,
		"POST /echo HTTP/1.1\r\nHost: app.test\r\nContent-Length: 3\r\n\r\nabc",
		"GET /cl HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: down.test\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: down.test\r\nAccept: text/html\r\n\r\n",
		"HEAD / HTTP/1.1\r\nHost: down.test\r\n\r\n",
		"GET / HTTP/1.0\r\nHost: none.test\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: small.test\r\nContent-Length: 5\r\n\r\nhello",
		"POST / HTTP/1.1\r\nHost: small.test\r\nContent-Length: 300000\r\n\r\nhello",
	)
	for _, req := range reqs {
		a, b := ask(fast, req), ask(std, req)
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("%q:\n fast:     %+v\n net/http: %+v", req, a, b)
		}
	}
	if fast.fs.served.Load() < int64(len(reqs)) {
		t.Errorf("the fast path served %d of %d", fast.fs.served.Load(), len(reqs))
	}
}

func TestGatewayFastPathHandsACMEChallengesToNetHTTP(t *testing.T) {
	up := backend(t, echoHandler)
	g := startGateway(t, Config{Challenge: func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/.well-known/acme-challenge/tok" {
			return false
		}
		io.WriteString(w, "key-authorization")
		return true
	}})
	g.Apply(State{HTTP: []Route{{Domain: "app.test", Path: "/", Component: "team/app", Port: 80, Upstreams: fixed(up), RedirectHTTPS: true},
		{Domain: "plain.test", Path: "/", Component: "team/plain", Port: 80, Upstreams: fixed(up)}}})
	if len(g.fast) != 1 {
		t.Fatal("the plain listener does not use the fast path")
	}
	get := func(host, path string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", "http://"+g.HTTPAddr()+path, nil)
		req.Host = host
		// A new connection each: one handed over stays with net/http.
		resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if resp, body := get("app.test", "/.well-known/acme-challenge/tok"); resp.StatusCode != 200 || body != "key-authorization" {
		t.Fatalf("challenge: %d %q", resp.StatusCode, body)
	}
	if resp, _ := get("app.test", "/x"); resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != "https://app.test/x" {
		t.Fatalf("redirect: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, body := get("plain.test", "/y"); resp.StatusCode != 200 || !strings.Contains(body, `"uri":"/y"`) {
		t.Fatalf("proxied: %d %q", resp.StatusCode, body)
	}
	if s, h := g.fast[0].served.Load(), g.fast[0].handed.Load(); s != 1 || h != 2 {
		t.Fatalf("served %d, handed over %d", s, h)
	}
}
