package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// StatusClientClosed is the status an access record carries when the
// client went away before the gateway could answer (nginx's 499); nothing
// is sent.
const StatusClientClosed = 499

// Default timeouts for routes and options that leave them zero.
const (
	DefaultConnectTimeout = 5 * time.Second
	DefaultReadTimeout    = 60 * time.Second
	DefaultSendTimeout    = 60 * time.Second
)

// ProxyOptions configure a Proxy; the zero value is usable.
type ProxyOptions struct {
	// Timeouts fill a route's zero timeouts; their own zeros take the
	// defaults (5s to connect, 60s for the response headers and for each
	// write of the request body).
	Timeouts Timeouts
	// Observer receives one record per request; SetObserver replaces it.
	Observer Observer
	// MaxIdlePerUpstream bounds the keep-alive connections kept open to
	// one instance address (default 128).
	MaxIdlePerUpstream int
	// IdleTimeout closes keep-alive connections unused this long (default
	// 30s), shorter than most servers' own idle timeouts so the gateway is
	// usually the side that closes.
	IdleTimeout time.Duration
}

// Proxy is the HTTP side of the gateway: it routes each request by the
// current table and forwards it over its own HTTP/1.1 client (forward.go).
type Proxy struct {
	table    tableHolder
	next     atomic.Uint64
	observer atomic.Pointer[observerBox]
	defaults Timeouts
	pool     *upstreamPool
}

type observerBox struct{ o Observer }

// NewProxy returns a proxy with an empty table whose routes wait readTimeout
// for response headers unless they say otherwise (0 takes the default).
func NewProxy(readTimeout time.Duration) *Proxy {
	return NewProxyWith(ProxyOptions{Timeouts: Timeouts{Read: readTimeout}})
}

// NewProxyWith returns a proxy with an empty table.
func NewProxyWith(opts ProxyOptions) *Proxy {
	d := opts.Timeouts
	if d.Connect <= 0 {
		d.Connect = DefaultConnectTimeout
	}
	if d.Read <= 0 {
		d.Read = DefaultReadTimeout
	}
	if d.Send <= 0 {
		d.Send = DefaultSendTimeout
	}
	p := &Proxy{defaults: d, pool: newUpstreamPool(opts.MaxIdlePerUpstream, opts.IdleTimeout)}
	if opts.Observer != nil {
		p.SetObserver(opts.Observer)
	}
	return p
}

// SetRoutes replaces the routing table; requests in flight and open
// WebSockets keep the route they started with.
func (p *Proxy) SetRoutes(routes []Route) {
	// NewTable keeps pointers into the slice: a copy keeps the caller free
	// to reuse theirs.
	p.table.p.Store(NewTable(append([]Route(nil), routes...)))
}

// SetObserver sets who receives a record of every request; nil stops it.
func (p *Proxy) SetObserver(o Observer) {
	if o == nil {
		p.observer.Store(nil)
		return
	}
	p.observer.Store(&observerBox{o})
}

// Close closes the idle keep-alive connections to instances. Requests in
// flight finish; connections they return afterwards are closed.
func (p *Proxy) Close() { p.pool.close() }

// exchange is one request's state. It is pooled with the access record the
// observer receives, so a proxied request allocates little of its own.
type exchange struct {
	rec   AccessRecord
	w     http.ResponseWriter
	r     *http.Request
	route *Route
	start time.Time

	plan        plan
	wroteHeader bool
	abort       bool // the response is cut short: the client must not take it as complete

	// The request body writer (forward.go) runs beside the response reader.
	bodyDone chan error
	bytesIn  int64 // written by the body writer, read after bodyDone
	mu       sync.Mutex
	// Under mu: the writer is over (it returned), its error, and whether
	// the reader has interrupted it (its error then is the reader's doing).
	bodyOver        bool
	bodyErr         error
	bodyInterrupted bool
	bodyComplete    atomic.Bool // the writer read the client's body to its end
	duplex          bool        // HTTP/1 full duplex is on (see closeUnreadBody)
}

var exchangePool = sync.Pool{New: func() any { return &exchange{bodyDone: make(chan error, 1)} }}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.serveExchange(w, r, nil) {
		// The instance's answer broke off after it had started: aborting
		// makes the server cut the connection (or reset the stream) instead
		// of ending a chunked body as if it were complete.
		panic(http.ErrAbortHandler)
	}
}

// serveExchange answers one request (route: already matched, or nil) and
// reports the observer; abort says the answer broke off after it had
// started, so the client's connection must be cut.
func (p *Proxy) serveExchange(w http.ResponseWriter, r *http.Request, route *Route) (abort bool) {
	x := exchangePool.Get().(*exchange)
	x.w, x.r, x.start = w, r, time.Now()
	reqID := r.Header.Get("X-Request-Id")
	if reqID == "" {
		reqID = newRequestID()
	}
	x.rec.RequestID = reqID
	p.serve(x, route)
	abort = x.abort
	if ob := p.observer.Load(); ob != nil {
		rec := &x.rec
		rec.Time, rec.Duration = x.start, time.Since(x.start)
		rec.Remote, rec.Method, rec.Host, rec.Path, rec.Proto = r.RemoteAddr, r.Method, r.Host, r.URL.Path, r.Proto
		rec.Route = x.route
		rec.BytesIn = x.bytesIn
		ob.o.Observe(rec)
	}
	*x = exchange{bodyDone: x.bodyDone}
	exchangePool.Put(x)
	return abort
}

// serve routes the request and answers it, from the instance or itself.
func (p *Proxy) serve(x *exchange, route *Route) {
	r, w := x.r, x.w
	if route == nil {
		route = p.table.load().Match(r)
	}
	if route == nil {
		p.fail(x, unknownHost(r.Host), nil)
		return
	}
	x.route = route
	if r.Method == http.MethodConnect {
		// A tunnel request is for proxies; no component asked for it.
		w.Header().Set("X-Request-Id", x.rec.RequestID)
		http.Error(w, "CONNECT is not supported", http.StatusMethodNotAllowed)
		x.rec.Status = http.StatusMethodNotAllowed
		return
	}
	if route.RedirectHTTPS && r.TLS == nil && !strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if strings.Contains(host, ":") {
			host = "[" + host + "]" // IPv6
		}
		w.Header().Set("Location", "https://"+host+r.URL.RequestURI())
		w.Header().Set("X-Request-Id", x.rec.RequestID)
		w.WriteHeader(http.StatusPermanentRedirect)
		x.rec.Status = http.StatusPermanentRedirect
		return
	}
	if route.Limiter != nil && !route.Limiter.Allow() {
		p.fail(x, rateLimited(route), nil)
		return
	}
	if route.MaxBodyBytes > 0 && r.ContentLength > route.MaxBodyBytes {
		p.fail(x, bodyTooLarge(route), nil)
		return
	}
	ups := route.Upstreams()
	if len(ups) == 0 {
		p.fail(x, noReadyInstance(route), nil)
		return
	}
	p.forward(x, ups)
}

// timeouts are the route's, with the proxy's defaults for zeros.
func (p *Proxy) timeouts(r *Route) Timeouts {
	t := r.Timeouts
	if t.Connect <= 0 {
		t.Connect = p.defaults.Connect
	}
	if t.Read <= 0 {
		t.Read = p.defaults.Read
	}
	if t.Send <= 0 {
		t.Send = p.defaults.Send
	}
	return t
}

// fail answers with the gateway's own page, unless the response has
// already started (then the client can only be cut off).
func (p *Proxy) fail(x *exchange, f Failure, err error) {
	x.rec.Cause = f.Cause
	f.RequestID = x.rec.RequestID
	if x.wroteHeader {
		// The record keeps the status the client got.
		x.abort = true
		slog.Info("gateway error mid-answer", "cause", f.Cause, "host", x.r.Host, "path", x.r.URL.Path,
			"component", f.Component, "upstream", x.rec.Upstream, "request_id", f.RequestID, "err", err)
		return
	}
	x.rec.Status = f.Status
	if err != nil {
		slog.Info("gateway error", "status", f.Status, "cause", f.Cause, "host", x.r.Host, "path", x.r.URL.Path,
			"component", f.Component, "upstream", x.rec.Upstream, "request_id", f.RequestID, "err", err)
	}
	h := x.w.Header()
	clear(h) // whatever an instance's broken answer left there
	h.Set("X-Request-Id", f.RequestID)
	if x.closeUnreadBody() {
		h.Set("Connection", "close")
	}
	cw := countingWriter{ResponseWriter: x.w}
	f.write(&cw, x.r)
	x.wroteHeader = true
	x.rec.BytesOut += cw.n
}

// upstreamFailed classifies what went wrong with the instance.
func (p *Proxy) upstreamFailed(x *exchange, err error) {
	route := x.route
	var f Failure
	var bad *badResponseError
	switch {
	case clientGone(x.r, err):
		if x.wroteHeader {
			return
		}
		// Left (nothing to answer), or still there with a body that
		// stalled or is malformed.
		x.rec.Status = StatusClientClosed
		send := http.StatusRequestTimeout
		if ce := (*clientBodyError)(nil); errors.As(err, &ce) {
			switch {
			case isTimeout(ce.err):
				x.rec.Status = http.StatusRequestTimeout
			case !isStale(ce.err):
				x.rec.Status, send = http.StatusBadRequest, http.StatusBadRequest
			}
		}
		if x.rec.Status != StatusClientClosed || x.closeUnreadBody() {
			// Without an answer the server would send an empty 200; and
			// an unread HTTP/1 body must close the connection (see
			// closeUnreadBody).
			h := x.w.Header()
			clear(h)
			if x.closeUnreadBody() {
				h.Set("Connection", "close")
			}
			h.Set("X-Request-Id", x.rec.RequestID)
			x.w.WriteHeader(send)
			x.wroteHeader = true
		}
		return
	case errors.Is(err, errBodyTooLarge):
		f = bodyTooLarge(route)
	case errors.Is(err, syscall.ECONNREFUSED):
		f = refused(route, false)
		if route.Hint != nil {
			f = withHint(f, route.Hint(x.rec.Upstream))
		}
	case isTimeout(err):
		f = timedOut(route)
	case errors.As(err, &bad):
		f = refused(route, true)
		f.Message = "The instance answered with something that is not HTTP/1.1: " + bad.msg + "."
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		f = refused(route, true)
	default:
		f = refused(route, true)
		f.Message = "The instance could not be reached: " + err.Error()
	}
	p.fail(x, f, err)
}

// clientGone reports whether err comes from the client's side: it left,
// or its request body broke off.
func clientGone(r *http.Request, err error) bool {
	if r.Context().Err() != nil {
		return true
	}
	var ce *clientBodyError
	return errors.As(err, &ce)
}

func isTimeout(err error) bool {
	var nerr net.Error
	return errors.As(err, &nerr) && nerr.Timeout() || errors.Is(err, context.DeadlineExceeded)
}

// countingWriter counts what a gateway page writes.
type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}

// newRequestID returns "req-" and 16 base32 characters like model.NewID,
// from the runtime's per-thread ChaCha8 generator: request ids need to be
// unique, not secret, and crypto/rand costs a getrandom(2) call a request
// on most kernels.
func newRequestID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	var b [20]byte
	copy(b[:], "req-")
	hi, lo := rand.Uint64(), rand.Uint64()
	for i := 0; i < 12; i++ {
		b[4+i] = alphabet[hi&31]
		hi >>= 5
	}
	for i := 12; i < 16; i++ {
		b[4+i] = alphabet[lo&31]
		lo >>= 5
	}
	return string(b[:])
}
