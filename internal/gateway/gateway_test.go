package gateway

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startGateway(t *testing.T, cfg Config) *Gateway {
	t.Helper()
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:0"
	}
	if cfg.HTTPSAddr == "" {
		cfg.HTTPSAddr = "127.0.0.1:0"
	}
	cfg.TCPHost = "127.0.0.1"
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

func fixed(addrs ...string) func() []string { return func() []string { return addrs } }

func TestGatewayServesHTTPAndHTTPSBySNI(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Host+" "+r.Header.Get("X-Forwarded-Proto"))
	}))
	defer backend.Close()
	up := strings.TrimPrefix(backend.URL, "http://")
	log := &lockedBuffer{}
	g := startGateway(t, Config{AccessLog: log})

	certA := leafFor(t, "a.test")
	certB := leafFor(t, "*.b.test")
	g.Apply(State{
		HTTP: []Route{
			{ID: "r1", Domain: "a.test", Component: "t/a", Port: 80, Upstreams: fixed(up)},
			{ID: "r2", Domain: "*.b.test", Component: "t/b", Port: 80, Upstreams: fixed(up)},
		},
		Certs: []*tls.Certificate{certA, certB},
	})

	for _, tc := range []struct{ name, want string }{{"a.test", "a.test https"}, {"x.b.test", "x.b.test https"}} {
		roots := x509.NewCertPool()
		roots.AddCert(certA.Leaf)
		roots.AddCert(certB.Leaf)
		conn, err := tls.Dial("tcp", g.HTTPSAddr(), &tls.Config{ServerName: tc.name, RootCAs: roots, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatalf("%s: TLS with the uploaded certificate: %v", tc.name, err)
		}
		io.WriteString(conn, "GET / HTTP/1.1\r\nHost: "+tc.name+"\r\nConnection: close\r\n\r\n")
		body, _ := io.ReadAll(conn)
		conn.Close()
		if !strings.Contains(string(body), tc.want) {
			t.Errorf("%s over https: %q", tc.name, body)
		}
	}
	if !g.HasCertificate("a.test") || !g.HasCertificate("y.b.test") || g.HasCertificate("c.test") {
		t.Error("HasCertificate does not follow the certificates applied")
	}
	// A certificate change applies to the next handshake, no restart.
	g.Apply(State{HTTP: []Route{{ID: "r1", Domain: "a.test", Upstreams: fixed(up)}}})
	if g.HasCertificate("a.test") {
		t.Error("removed certificate still served")
	}

	resp, err := http.Get("http://" + g.HTTPAddr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("unknown host over http: %d", resp.StatusCode)
	}
	g.Close()
	var line map[string]any
	first, _, _ := strings.Cut(log.String(), "\n")
	if err := json.Unmarshal([]byte(first), &line); err != nil {
		t.Fatalf("access log line is not JSON: %q: %v", first, err)
	}
	if line["host"] != "a.test" || line["status"] != float64(200) || line["route"] != "r1" {
		t.Errorf("access log line: %v", line)
	}
	if !strings.Contains(log.String(), `"cause":"unknown host"`) {
		t.Errorf("access log lacks the 404's cause:\n%s", log)
	}
}

func leafFor(t *testing.T, name string) *tls.Certificate {
	t.Helper()
	c, err := selfSigned(name, name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTCPRoutesFollowInstancesAndSayWhy(t *testing.T) {
	echo := func(reply string) (string, func()) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				io.WriteString(c, reply)
				c.Close()
			}
		}()
		return ln.Addr().String(), func() { ln.Close() }
	}
	one, closeOne := echo("one")
	defer closeOne()
	two, closeTwo := echo("two")
	defer closeTwo()
	g := startGateway(t, Config{})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	var ups []string
	var mu sync.Mutex
	upstreams := func() []string { mu.Lock(); defer mu.Unlock(); return ups }
	set := func(a ...string) { mu.Lock(); ups = a; mu.Unlock() }
	if errs := g.Apply(State{TCP: []TCPRoute{{Port: port, Component: "t/db", Target: 5432, Upstreams: upstreams}}}); len(errs) != 0 {
		t.Fatal(errs)
	}
	read := func() string {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(c)
		return string(b)
	}
	if got := read(); got != "" {
		t.Errorf("no instance: got %q, want the connection closed", got)
	}
	set(one, two)
	seen := map[string]int{}
	for i := 0; i < 10; i++ {
		seen[read()]++
	}
	if seen["one"] == 0 || seen["two"] == 0 {
		t.Errorf("not balanced over both instances: %v", seen)
	}
	closeTwo() // refuses now: the next instance takes the connection
	for i := 0; i < 6; i++ {
		if got := read(); got != "one" {
			t.Errorf("with a refusing instance: %q", got)
		}
	}
	errs := g.RecentErrors("t/db")
	if len(errs) == 0 || errs[len(errs)-1].Cause != CauseNoReadyInstance {
		t.Errorf("recent errors: %+v", errs)
	}
	if got := g.TCPAddresses()[port]; got == "" {
		t.Errorf("tcp addresses: %v", g.TCPAddresses())
	}
	// A taken port is reported, the others still open.
	if errs := g.Apply(State{TCP: []TCPRoute{{Port: port, Upstreams: upstreams}, {Port: port2(t, g), Upstreams: upstreams}}}); len(errs) != 1 {
		t.Errorf("busy port not reported: %v", errs)
	}
	// Removing the route closes the port.
	g.Apply(State{})
	if _, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second); err == nil {
		t.Error("port still open after its route went")
	}
}

// port2 returns a port already in use (the gateway's own HTTP port).
func port2(t *testing.T, g *Gateway) int {
	_, p, _ := net.SplitHostPort(g.HTTPAddr())
	n, _ := strconv.Atoi(p)
	return n
}

func TestMetricsCountPerRoute(t *testing.T) {
	m := newMetrics()
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.Collectors()...)
	r := &Route{ID: "http-1", Component: "t/web"}
	for i := 0; i < 3; i++ {
		m.observe(&AccessRecord{Route: r, Status: 200, BytesOut: 1024, Duration: time.Millisecond})
	}
	m.observe(&AccessRecord{Route: r, Status: 502, Cause: CauseRefused})
	m.observe(&AccessRecord{TCPPort: 30001, Component: "t/db", BytesIn: 10})
	if got := testutil.ToFloat64(m.requests.WithLabelValues("http-1", "t/web", "200")); got != 3 {
		t.Errorf("200s: %v", got)
	}
	if got := testutil.ToFloat64(m.requests.WithLabelValues("http-1", "t/web", "502")); got != 1 {
		t.Errorf("502s: %v", got)
	}
	if got := testutil.ToFloat64(m.bytes.WithLabelValues("http-1", "t/web", "out")); got != 3072 {
		t.Errorf("bytes out: %v", got)
	}
	if got := testutil.ToFloat64(m.requests.WithLabelValues("tcp-30001", "t/db", "error")); got != 1 {
		t.Errorf("tcp: %v", got)
	}
}

func TestRecentErrorsKeepTheLastNewestFirst(t *testing.T) {
	r := newRecentErrors(3)
	for i := 0; i < 5; i++ {
		r.observe(&AccessRecord{Route: &Route{Component: "t/a"}, Status: 502, Cause: CauseRefused, Path: "/" + strconv.Itoa(i)})
	}
	r.observe(&AccessRecord{Route: &Route{Component: "t/a"}, Status: 200}) // not an error
	got := r.list("t/a")
	if len(got) != 3 || got[0].Path != "/4" || got[2].Path != "/2" {
		t.Errorf("recent errors: %+v", got)
	}
}

func TestRateLimiterRefillsAtItsRate(t *testing.T) {
	l := NewRateLimiter(100, 5)
	n := 0
	for l.Allow() {
		n++
	}
	if n != 5 {
		t.Errorf("burst: %d allowed, want 5", n)
	}
	time.Sleep(50 * time.Millisecond)
	if !l.Allow() {
		t.Error("no token after 50ms at 100/s")
	}
}
