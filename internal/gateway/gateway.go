package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config is where the gateway listens and what it reports to.
type Config struct {
	HTTPAddr  string // plain HTTP (and h2c); "" disables it
	HTTPSAddr string // TLS with SNI (h2 and HTTP/1.1); "" disables it
	// TCPHost is the address TCP rules listen on; "" is every interface.
	TCPHost string
	// AccessLog receives one JSON line a request; nil disables it. Close
	// closes it when it is an io.Closer.
	AccessLog io.Writer
	// Challenge answers ACME HTTP-01 requests on the plain listener (before
	// routing and any HTTPS redirect); false lets the request through.
	Challenge func(w http.ResponseWriter, r *http.Request) bool
	// NetHTTPOnly serves every plain-HTTP connection with net/http's
	// server; by default the gateway's own HTTP/1.1 server (fastserve.go)
	// answers the common requests and hands the rest to net/http.
	NetHTTPOnly bool
	// HeaderTimeout bounds a request head (and a TLS handshake), from a
	// connection's start for its first; IdleTimeout bounds the wait for
	// a kept-alive connection's next request. Zero is 30 s and 75 s.
	HeaderTimeout, IdleTimeout time.Duration
	// MaxConns caps the client connections of the HTTP and HTTPS
	// listeners together; more wait to be accepted. Zero is 10000.
	MaxConns int
}

// DefaultMaxConns is the client connection cap when Config sets none.
const DefaultMaxConns = 10000

func (c *Config) timeouts() (header, idle time.Duration) {
	header, idle = c.HeaderTimeout, c.IdleTimeout
	if header <= 0 {
		header = fastHeaderTimeout
	}
	if idle <= 0 {
		idle = fastIdleTimeout
	}
	return header, idle
}

// State is everything the gateway publishes; Apply replaces it whole.
type State struct {
	HTTP  []Route
	TCP   []TCPRoute
	Certs []*tls.Certificate
}

// Gateway publishes component ports: HTTP and HTTPS routed by domain, and
// TCP ports. It owns its listeners; the routing state comes from Apply.
type Gateway struct {
	cfg     Config
	proxy   *Proxy
	certs   *certStore
	tcp     *tcpListeners
	metrics *metrics
	access  *accessLog
	errors  *recentErrors

	servers         []*http.Server
	fast            []*fastServer
	limit           *connLimit
	closeOnce       sync.Once
	httpLn, httpsLn net.Listener
}

// New prepares a gateway; Start opens its listeners.
func New(cfg Config) (*Gateway, error) {
	certs, err := newCertStore()
	if err != nil {
		return nil, err
	}
	g := &Gateway{cfg: cfg, proxy: NewProxy(60 * time.Second), certs: certs, metrics: newMetrics(), errors: newRecentErrors(50)}
	g.tcp = &tcpListeners{host: cfg.TCPHost, observer: g.Observe, byPort: map[int]*tcpListener{}}
	if cfg.AccessLog != nil {
		g.access = newAccessLog(cfg.AccessLog)
	}
	g.proxy.SetObserver(g)
	return g, nil
}

// Start binds the HTTP and HTTPS listeners; an address in use fails here,
// so the server's start-up can say so.
func (g *Gateway) Start() error {
	maxConns := g.cfg.MaxConns
	if maxConns <= 0 {
		maxConns = DefaultMaxConns
	}
	g.limit = newConnLimit(maxConns)
	header, idle := g.cfg.timeouts()
	if g.cfg.HTTPAddr != "" {
		var protos http.Protocols
		protos.SetHTTP1(true)
		protos.SetUnencryptedHTTP2(true)
		srv := &http.Server{Handler: http.HandlerFunc(g.serveHTTP), Protocols: &protos,
			ReadHeaderTimeout: header, IdleTimeout: idle, ErrorLog: quietLog()}
		if err := g.listen(srv, g.cfg.HTTPAddr, nil, !g.cfg.NetHTTPOnly, &g.httpLn); err != nil {
			return fmt.Errorf("gateway http %s: %w", g.cfg.HTTPAddr, err)
		}
	}
	if g.cfg.HTTPSAddr != "" {
		tlsCfg := &tls.Config{GetCertificate: g.certs.get, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12}
		srv := &http.Server{Handler: g.proxy, TLSConfig: tlsCfg,
			ReadHeaderTimeout: header, IdleTimeout: idle, ErrorLog: quietLog()}
		if err := g.listen(srv, g.cfg.HTTPSAddr, tlsCfg, false, &g.httpsLn); err != nil {
			g.Close()
			return fmt.Errorf("gateway https %s: %w", g.cfg.HTTPSAddr, err)
		}
	}
	return nil
}

func (g *Gateway) listen(srv *http.Server, addr string, tlsCfg *tls.Config, fast bool, keep *net.Listener) error {
	raw, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ln := g.limit.listener(raw)
	g.servers = append(g.servers, srv)
	*keep = ln
	if fast {
		fs := newFastServer(g.proxy, srv, ln)
		g.fast = append(g.fast, fs)
		go srv.Serve(fs.handoff)
		go func() {
			if err := fs.serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				slog.Error("gateway listener stopped", "addr", addr, "err", err)
			}
		}()
		return nil
	}
	if tlsCfg != nil {
		g.serveTLS(srv, ln, tlsCfg)
		return nil
	}
	go func() {
		// Read through the framing scanner, as connections handed over
		// by the fast path are.
		err := srv.Serve(scannedListener{ln})
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Error("gateway listener stopped", "addr", addr, "err", err)
		}
	}()
	return nil
}

func (g *Gateway) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if g.cfg.Challenge != nil && strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") && g.cfg.Challenge(w, r) {
		return
	}
	g.proxy.ServeHTTP(w, r)
}

// HTTPAddr and HTTPSAddr are the bound addresses ("" when disabled).
func (g *Gateway) HTTPAddr() string  { return addrOf(g.httpLn) }
func (g *Gateway) HTTPSAddr() string { return addrOf(g.httpsLn) }

func addrOf(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}

// Apply replaces the routing state. Requests and connections in flight
// keep the routes they started with. It returns the TCP ports it could not
// listen on.
func (g *Gateway) Apply(s State) map[int]error {
	g.certs.set(s.Certs)
	g.proxy.SetRoutes(s.HTTP)
	return g.tcp.set(s.TCP)
}

// HasCertificate reports whether an uploaded or issued certificate covers
// domain (else HTTPS answers with a self-signed one).
func (g *Gateway) HasCertificate(domain string) bool { return g.certs.has(domain) }

// TCPAddresses maps each open gateway port to its listening address.
func (g *Gateway) TCPAddresses() map[int]string { return g.tcp.addresses() }

// RecentErrors returns the last requests the gateway answered itself for a
// component (team/alias), newest first.
func (g *Gateway) RecentErrors(component string) []GatewayError { return g.errors.list(component) }

// Collectors are the gateway's Prometheus metrics.
func (g *Gateway) Collectors() []prometheus.Collector { return g.metrics.Collectors() }

// Observe takes every finished request and connection.
func (g *Gateway) Observe(rec *AccessRecord) {
	g.metrics.observe(rec)
	g.errors.observe(rec)
	if g.access != nil {
		g.access.observe(rec)
	}
}

// Close stops listening, lets requests in flight finish for a few seconds,
// then cuts what is left.
func (g *Gateway) Close() { g.closeOnce.Do(g.close) }

func (g *Gateway) close() {
	g.tcp.close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, f := range g.fast {
		f.shutdown(ctx)
	}
	if g.httpsLn != nil {
		g.httpsLn.Close() // its accept loop is the gateway's (serveTLS)
	}
	for _, s := range g.servers {
		if err := s.Shutdown(ctx); err != nil {
			s.Close()
		}
	}
	// Idle upstream connections go once no request can use them.
	g.proxy.Close()
	if g.access != nil {
		g.access.close()
		if c, ok := g.cfg.AccessLog.(io.Closer); ok {
			c.Close()
		}
	}
}
