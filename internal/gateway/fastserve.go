package gateway

// The gateway's own HTTP/1.1 server for the common case. net/http's server
// pays on every request for generality (a Request built from scratch, the
// header map cloned at WriteHeader, a background read, per-request
// deadlines); this one parses the request head in place into a Request and
// a header map kept per connection, and writes the answer straight to the
// connection's buffer.
//
// It serves only what it fully understands: a request line and header
// fields with a Content-Length body or none, for a route that does not
// redirect. Anything else (h2c, Upgrade, Transfer-Encoding, Expect, ACME
// challenges, unknown hosts, malformed or long heads) hands the connection,
// with the bytes already read, to the net/http server behind it, so every
// other behaviour is net/http's as before. The answer follows net/http's
// rules (framing, Date, sniffed Content-Type, Connection) so that clients
// cannot tell the two apart.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	fastBufSize         = 4 << 10 // a head that does not fit goes to net/http
	fastPendingSize     = 2048    // net/http's buffer before it picks the framing
	maxPostHandlerBytes = 256 << 10
)

// The fast path's timeouts when its net/http server sets none (it takes
// that server's ReadHeaderTimeout and IdleTimeout, so a connection gets
// the same wherever it is served).
var (
	// fastHeaderTimeout bounds a head: from the connection's start for
	// the first, from its first byte for the next ones.
	fastHeaderTimeout = 30 * time.Second
	// fastIdleTimeout bounds the wait for the next request.
	fastIdleTimeout = 75 * time.Second
)

var (
	fastReaderPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, fastBufSize) }}
	fastWriterPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, fastBufSize) }}
)

// fastServer serves connections accepted from a listener, and hands those
// it does not serve to fallback through a listener of its own.
type fastServer struct {
	p        *Proxy
	fallback *http.Server
	handoff  *chanListener

	headerTimeout, idleTimeout time.Duration

	mu      sync.Mutex
	ln      net.Listener
	conns   map[*fastConn]struct{}
	closing atomic.Bool
	active  sync.WaitGroup

	served, handed atomic.Int64 // requests answered, connections handed over
}

// newFastServer starts fallback on the hand-over listener; serve takes
// the raw connections.
func newFastServer(p *Proxy, fallback *http.Server, ln net.Listener) *fastServer {
	s := &fastServer{p: p, fallback: fallback, ln: ln, handoff: newChanListener(ln.Addr()), conns: map[*fastConn]struct{}{},
		headerTimeout: fallback.ReadHeaderTimeout, idleTimeout: fallback.IdleTimeout}
	if s.headerTimeout <= 0 {
		s.headerTimeout = fastHeaderTimeout
	}
	if s.idleTimeout <= 0 {
		s.idleTimeout = fastIdleTimeout
	}
	return s
}

// serve accepts connections until shutdown.
func (s *fastServer) serve() error {
	ln := s.ln
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return http.ErrServerClosed
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				// Too many open files and the like: net/http waits too.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		go s.serveConn(c)
	}
}

// shutdown stops accepting, closes idle connections, and waits for the
// ones answering until ctx ends (then cuts them).
func (s *fastServer) shutdown(ctx context.Context) {
	s.closing.Store(true)
	s.ln.Close()
	s.mu.Lock()
	for fc := range s.conns {
		if fc.state.CompareAndSwap(connIdle, connClosed) {
			_ = fc.conn.SetReadDeadline(aLongTimeAgo)
		}
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.active.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.mu.Lock()
		for fc := range s.conns {
			fc.conn.Close()
		}
		s.mu.Unlock()
		<-done
	}
}

const (
	connIdle int32 = iota
	connActive
	connClosed
)

// fastConn is one client connection and what its requests reuse.
type fastConn struct {
	s     *fastServer
	conn  net.Conn
	br    *bufio.Reader
	bw    *bufio.Writer
	state atomic.Int32

	ctx    clientCtx
	req    *http.Request
	url    url.URL
	header http.Header
	body   fastBody
	w      fastWriter
	linger bool
}

func (s *fastServer) serveConn(c net.Conn) {
	s.active.Add(1)
	fc := &fastConn{s: s, conn: c, header: http.Header{}}
	fc.ctx.init(c)
	fc.req = new(http.Request).WithContext(&fc.ctx)
	fc.req.RemoteAddr = c.RemoteAddr().String()
	fc.body.fc = fc
	fc.w.fc = fc
	fc.w.h = http.Header{}
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		s.active.Done()
		c.Close()
		return
	}
	s.conns[fc] = struct{}{}
	s.mu.Unlock()

	fc.br = fastReaderPool.Get().(*bufio.Reader)
	fc.br.Reset(c)
	fc.bw = fastWriterPool.Get().(*bufio.Writer)
	fc.bw.Reset(c)
	handover := fc.safeLoop()

	s.mu.Lock()
	delete(s.conns, fc)
	s.mu.Unlock()
	s.active.Done()
	fc.bw.Reset(nil)
	fastWriterPool.Put(fc.bw)
	if handover {
		s.handed.Add(1)
		// The net/http server reads what is buffered first; the reader
		// goes back to the pool once it is drained.
		_ = c.SetDeadline(time.Time{})
		s.handoff.give(&handedConn{Conn: c, br: fc.br})
		return
	}
	if fc.linger {
		// As net/http's closeWriteAndWait.
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		time.Sleep(500 * time.Millisecond)
	}
	c.Close()
	fc.br.Reset(nil)
	fastReaderPool.Put(fc.br)
}

// safeLoop is loop, with a panic ending only its connection, as net/http
// does (http.ErrAbortHandler silently).
func (fc *fastConn) safeLoop() (handover bool) {
	defer func() {
		if e := recover(); e != nil {
			if e != http.ErrAbortHandler {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				slog.Error("gateway: panic serving", "remote", fc.req.RemoteAddr, "panic", e, "stack", string(buf))
			}
			handover = false
			fc.linger = false
		}
	}()
	return fc.loop()
}

// loop serves requests in order until the connection ends; it reports
// whether the connection goes to net/http.
func (fc *fastConn) loop() (handover bool) {
	c, br := fc.conn, fc.br
	// A new connection must bring its first head in the header timeout,
	// as net/http's ReadHeaderTimeout: a silent one is closed then.
	_ = c.SetReadDeadline(time.Now().Add(fc.s.headerTimeout))
	first := true
	for {
		// Idle first, then the check: Close either sees the connection
		// idle, or the connection sees Close.
		fc.state.Store(connIdle)
		if fc.s.closing.Load() {
			return false
		}
		if br.Buffered() == 0 {
			if !first {
				_ = c.SetReadDeadline(time.Now().Add(fc.s.idleTimeout))
			}
			if _, err := br.Peek(1); err != nil {
				return false
			}
		}
		if !fc.state.CompareAndSwap(connIdle, connActive) {
			return false // shutting down
		}
		n, ok, err := fc.readHead(first)
		first = false
		if err != nil {
			// A timeout, or the client left mid-head: net/http hangs up
			// without an answer too.
			return false
		}
		if !ok {
			return fc.flushBeforeHandover()
		}
		buf, _ := br.Peek(n)
		route, ok := fc.parse(buf)
		if !ok {
			return fc.flushBeforeHandover()
		}
		br.Discard(n)
		if !fc.serveRequest(route) {
			return false
		}
	}
}

func (fc *fastConn) flushBeforeHandover() bool {
	return fc.bw.Flush() == nil
}

// readHead makes sure a whole request head is buffered and returns its
// length (with the blank line); ok is false when net/http must read it
// (longer than the buffer, bare LF line ends). deadline says the head's
// deadline is set already (the first head's runs from the start).
func (fc *fastConn) readHead(deadline bool) (n int, ok bool, err error) {
	br := fc.br
	for {
		buf, _ := br.Peek(br.Buffered())
		if i := bytes.Index(buf, crlfcrlf); i >= 0 {
			return i + 4, true, nil
		}
		if bytes.Contains(buf, lflf) || bytes.HasPrefix(buf, crlf) || len(buf) >= fastBufSize {
			return 0, false, nil
		}
		if !deadline {
			// Against slowloris: the rest of the head must come in time.
			_ = fc.conn.SetReadDeadline(time.Now().Add(fc.s.headerTimeout))
			deadline = true
		}
		if _, err := br.Peek(len(buf) + 1); err != nil {
			return 0, false, err
		}
	}
}

var (
	crlfcrlf = []byte("\r\n\r\n")
	crlf     = []byte("\r\n")
	lflf     = []byte("\n\n")
)

// parse reads a head into fc.req; ok is false when net/http must answer.
func (fc *fastConn) parse(buf []byte) (*Route, bool) {
	// The head as one string: the request's strings are slices of it.
	lineEnd := bytes.IndexByte(buf, '\n')
	if lineEnd < 1 || buf[lineEnd-1] != '\r' {
		return nil, false
	}
	line := buf[:lineEnd-1]
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return nil, false
	}
	var method string
	switch string(line[:sp1]) {
	case "GET":
		method = http.MethodGet
	case "HEAD":
		method = http.MethodHead
	case "POST":
		method = http.MethodPost
	case "PUT":
		method = http.MethodPut
	case "PATCH":
		method = http.MethodPatch
	case "DELETE":
		method = http.MethodDelete
	case "OPTIONS":
		method = http.MethodOptions
	default:
		return nil, false
	}
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 || rest[0] != '/' {
		return nil, false
	}
	target, proto := rest[:sp2], rest[sp2+1:]
	var minor int
	switch string(proto) {
	case "HTTP/1.1":
		minor = 1
	case "HTTP/1.0":
	default:
		return nil, false
	}
	simple := true
	for _, c := range target {
		if c <= ' ' || c >= 0x7f || c == '#' {
			return nil, false
		}
		if !isSafePathChar(c) {
			simple = false
		}
	}

	head := string(buf) // the one allocation for every string of the head
	h := fc.header
	clear(h)
	lines := bytes.Count(buf, crlf) - 2
	vals := make([]string, 0, max(lines, 1))
	r := fc.req
	r.ContentLength = 0
	r.Host = ""
	hosts, lengths := 0, 0
	var connTokens string
	pos := lineEnd + 1
	for {
		end := bytes.IndexByte(buf[pos:], '\n') + pos
		if end-1 < pos || buf[end-1] != '\r' {
			return nil, false
		}
		l := buf[pos : end-1]
		if len(l) == 0 {
			break
		}
		i := bytes.IndexByte(l, ':')
		if i <= 0 {
			return nil, false
		}
		kb, vb := l[:i], trimOWS(l[i+1:])
		for _, c := range vb {
			if c < ' ' && c != '\t' || c == 0x7f {
				return nil, false
			}
		}
		var key string
		if isCanonical(kb) {
			key = head[pos : pos+i]
		} else {
			var ok bool
			if key, ok = canonicalKey(kb); !ok {
				return nil, false
			}
		}
		voff := pos + i + 1
		for voff < end && (buf[voff] == ' ' || buf[voff] == '\t') {
			voff++
		}
		v := head[voff : voff+len(vb)]
		pos = end + 1
		switch key {
		case "Host":
			hosts++
			if hosts > 1 || !validHost(v) {
				return nil, false
			}
			r.Host = v
			continue // net/http keeps it out of the map
		case "Content-Length":
			lengths++
			n, ok := parseLength(vb)
			if lengths > 1 || !ok {
				return nil, false
			}
			r.ContentLength = n
		case "Transfer-Encoding", "Expect", "Upgrade", "Http2-Settings":
			return nil, false
		case "Connection":
			if connTokens == "" {
				connTokens = v
			} else {
				connTokens += "," + v
			}
		}
		if old, ok := h[key]; ok {
			h[key] = append(old, v)
		} else if len(vals) < cap(vals) {
			vals = append(vals, v)
			h[key] = vals[len(vals)-1 : len(vals) : len(vals)]
		} else {
			h[key] = []string{v}
		}
	}
	if hosts == 0 {
		return nil, false
	}
	if hp, ok := h["Pragma"]; ok && len(hp) > 0 && hp[0] == "no-cache" {
		if _, ok := h["Cache-Control"]; !ok {
			h["Cache-Control"] = []string{"no-cache"}
		}
	}
	uri := head[sp1+1 : sp1+1+len(target)]
	u := &fc.url
	*u = url.URL{}
	if simple {
		if i := strings.IndexByte(uri, '?'); i >= 0 {
			u.Path, u.RawQuery = uri[:i], uri[i+1:]
			u.ForceQuery = u.RawQuery == ""
		} else {
			u.Path = uri
		}
	} else {
		pu, err := url.ParseRequestURI(uri)
		if err != nil {
			return nil, false
		}
		*u = *pu
	}
	if strings.HasPrefix(u.Path, "/.well-known/acme-challenge/") {
		return nil, false
	}
	r.Method, r.URL, r.RequestURI, r.Header = method, u, uri, h
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, minor
	if minor == 0 {
		r.Proto = "HTTP/1.0"
	}
	r.Close = false
	w := &fc.w
	w.reset(method == http.MethodHead, minor == 1)
	if connTokens != "" {
		if hasToken(connTokens, "upgrade") {
			return nil, false
		}
		w.wantsClose = hasToken(connTokens, "close")
		w.wants10KeepAlive = minor == 0 && hasToken(connTokens, "keep-alive")
	}
	r.Close = w.wantsClose || minor == 0 && !w.wants10KeepAlive
	if r.ContentLength > 0 {
		fc.body.left = r.ContentLength
		r.Body = &fc.body
	} else {
		fc.body.left = 0
		r.Body = http.NoBody
	}
	route := fc.s.p.table.load().Match(r)
	if route == nil || route.RedirectHTTPS {
		return nil, false
	}
	return route, true
}

// serveRequest answers the parsed request; false ends the connection.
func (fc *fastConn) serveRequest(route *Route) bool {
	w := &fc.w
	fc.s.served.Add(1)
	if fc.s.p.serveExchange(w, fc.req, route) {
		// Cut off mid-answer: what is written goes, the end does not.
		fc.bw.Flush()
		return false
	}
	w.finish()
	if w.closeAfter || fc.body.left > 0 {
		fc.bw.Flush()
		// With the body unread, closing at once could reset the
		// connection before the client reads the answer.
		fc.linger = fc.body.left > 0
		return false
	}
	if fc.br.Buffered() == 0 {
		// Pipelined requests get their answers in one write.
		if err := fc.bw.Flush(); err != nil {
			return false
		}
	}
	return w.err == nil
}

func isSafePathChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~/!$&'()*+,;=:@?", c) >= 0
}

func isCanonical(k []byte) bool {
	upper := true
	for _, c := range k {
		if !isTokenChar(c) {
			return false
		}
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			return false
		}
		upper = c == '-'
	}
	return true
}

// validHost is a stricter httpguts.ValidHostHeader: anything unusual
// goes to net/http.
func validHost(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '-', c == ':', c == '[', c == ']', c == '_':
		default:
			return false
		}
	}
	return true
}

func hasToken(v, token string) bool {
	for v != "" {
		var t string
		t, v, _ = strings.Cut(v, ",")
		if strings.EqualFold(strings.TrimSpace(t), token) {
			return true
		}
	}
	return false
}

// fastBody is a request body of known length, read from the connection.
type fastBody struct {
	fc   *fastConn
	left int64
}

func (b *fastBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.fc.br.Read(p)
	b.left -= int64(n)
	switch {
	case b.left == 0:
		// The end comes with the last bytes, as net/http's body does: a
		// reader learns it is complete without another call.
		return n, io.EOF
	case err == io.EOF:
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *fastBody) Close() error { return nil }

// clientCtx is the request's context: done when the client has gone
// (peeked at without blocking, as net/http's background read would notice).
type clientCtx struct {
	raw  syscall.RawConn
	gone atomic.Bool
}

func (c *clientCtx) init(conn net.Conn) {
	if sc, ok := conn.(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
	}
}

func (c *clientCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *clientCtx) Done() <-chan struct{}       { return nil }
func (c *clientCtx) Value(any) any               { return nil }
func (c *clientCtx) Err() error {
	if c.gone.Load() {
		return context.Canceled
	}
	if c.raw != nil && peerClosed(c.raw) {
		c.gone.Store(true)
		return context.Canceled
	}
	return nil
}

// fastWriter is the ResponseWriter of the fast path. It follows
// net/http's chunkWriter.writeHeader: it holds up to 2 KB of body before it
// decides the framing, so a short answer gets a Content-Length.
type fastWriter struct {
	fc      *fastConn
	h       http.Header
	pending []byte

	status      int
	wroteHeader bool
	headDone    bool
	isHead      bool
	is11        bool
	cl          int64 // declared Content-Length, -1 for none
	written     int64
	chunking    bool
	closeAfter  bool
	duplex      bool
	trailers    bool
	err         error

	wantsClose, wants10KeepAlive bool
}

func (w *fastWriter) reset(head, is11 bool) {
	clear(w.h)
	*w = fastWriter{fc: w.fc, h: w.h, pending: w.pending[:0], isHead: head, is11: is11, cl: -1}
}

func (w *fastWriter) Header() http.Header { return w.h }

func (w *fastWriter) WriteHeader(code int) {
	if w.wroteHeader || code < 200 && code != http.StatusSwitchingProtocols {
		return
	}
	w.wroteHeader, w.status = true, code
	if v := w.h["Content-Length"]; len(v) > 0 && v[0] != "" {
		if n, err := strconv.ParseInt(v[0], 10, 64); err == nil && n >= 0 {
			w.cl = n
		} else {
			delete(w.h, "Content-Length")
		}
	}
}

func (w *fastWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !bodyAllowedForStatus(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	w.written += int64(len(p))
	if w.cl != -1 && w.written > w.cl {
		return 0, http.ErrContentLength
	}
	if !w.headDone {
		if len(w.pending)+len(p) <= fastPendingSize {
			w.pending = append(w.pending, p...)
			return len(p), nil
		}
		w.writeHead(p, false)
	}
	return w.body(p)
}

// body writes p in the framing chosen.
func (w *fastWriter) body(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.isHead || len(p) == 0 {
		return len(p), nil
	}
	bw := w.fc.bw
	if w.chunking {
		var hex [16]byte
		bw.Write(strconv.AppendInt(hex[:0], int64(len(p)), 16))
		bw.WriteString("\r\n")
		bw.Write(p)
		_, w.err = bw.WriteString("\r\n")
	} else {
		_, w.err = bw.Write(p)
	}
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

func (w *fastWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headDone {
		w.writeHead(nil, false)
	}
	if w.err == nil {
		w.err = w.fc.bw.Flush()
	}
}

// SetReadDeadline and EnableFullDuplex serve http.ResponseController.
func (w *fastWriter) SetReadDeadline(t time.Time) error { return w.fc.conn.SetReadDeadline(t) }
func (w *fastWriter) EnableFullDuplex() error           { w.duplex = true; return nil }

// finish ends the answer once the handler is done.
func (w *fastWriter) finish() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headDone {
		w.writeHead(nil, true)
	}
	bw := w.fc.bw
	if w.chunking && w.err == nil {
		bw.WriteString("0\r\n")
		for k, vv := range w.h {
			if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
				writeFields(bw, name, vv)
			}
		}
		for _, v := range w.h["Trailer"] {
			for _, k := range strings.Split(v, ",") {
				k = http.CanonicalHeaderKey(strings.TrimSpace(k))
				if k != "" {
					writeFields(bw, k, w.h[k])
				}
			}
		}
		_, w.err = bw.WriteString("\r\n")
	}
	if !w.isHead && w.cl != -1 && bodyAllowedForStatus(w.status) && w.cl != w.written {
		w.closeAfter = true
	}
	if w.err != nil {
		w.closeAfter = true
	}
	if w.fc.body.left > 0 && !w.closeAfter {
		// Whatever the handler left of the body goes, as net/http would
		// (up to its limit), so the next request can be read.
		w.discardBody()
	}
}

func writeFields(bw *bufio.Writer, k string, vv []string) {
	for _, v := range vv {
		bw.WriteString(k)
		bw.WriteString(": ")
		bw.WriteString(v)
		bw.WriteString("\r\n")
	}
}

func (w *fastWriter) discardBody() {
	b := &w.fc.body
	if b.left >= maxPostHandlerBytes {
		w.closeAfter = true
		return
	}
	_ = w.fc.conn.SetReadDeadline(time.Now().Add(w.fc.s.headerTimeout))
	if _, err := io.Copy(io.Discard, b); err != nil || b.left > 0 {
		w.closeAfter = true
	}
}

func bodyAllowedForStatus(status int) bool {
	switch {
	case status >= 100 && status <= 199:
		return false
	case status == 204, status == 304:
		return false
	}
	return true
}

// writeHead writes the status line and header fields; p is the body
// write that did not fit (sniffed with what is pending), final that the
// handler is done.
func (w *fastWriter) writeHead(p []byte, final bool) {
	w.headDone = true
	h := w.h
	keepAlives := !w.fc.s.closing.Load()
	var setCL, setConn, setCT string
	var setTE bool
	skip := map[string]bool(nil)
	del := func(k string) {
		if _, ok := h[k]; ok {
			if skip == nil {
				skip = map[string]bool{}
			}
			skip[k] = true
		}
	}
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			del(k)
			w.trailers = true
		}
	}
	if len(h["Trailer"]) > 0 {
		w.trailers = true
	}
	te := headerGet(h, "Transfer-Encoding")
	hasTE := te != ""
	status := w.status
	var numBuf [20]byte
	if final && !w.trailers && !hasTE && bodyAllowedForStatus(status) && headerGet(h, "Content-Length") == "" && (!w.isHead || len(w.pending) > 0) {
		w.cl = int64(len(w.pending))
		setCL = string(strconv.AppendInt(numBuf[:0], w.cl, 10))
	}
	if w.wants10KeepAlive && keepAlives {
		if headerGet(h, "Content-Length") != "" && headerGet(h, "Connection") == "keep-alive" {
			w.closeAfter = false
		}
	}
	hasCL := w.cl != -1
	if w.wants10KeepAlive && (w.isHead || hasCL || !bodyAllowedForStatus(status)) {
		if _, ok := h["Connection"]; !ok {
			setConn = "keep-alive"
		}
	} else if !w.is11 || w.wantsClose {
		w.closeAfter = true
	}
	if headerGet(h, "Connection") == "close" || !keepAlives {
		w.closeAfter = true
	}
	// (duplex first: with it on, the body writer may be reading.)
	if !w.duplex && !w.closeAfter && w.fc.body.left > 0 {
		if w.fc.body.left >= maxPostHandlerBytes {
			del("Connection")
			setConn = "close"
			w.closeAfter = true
		} else {
			w.discardBody()
		}
	}
	if bodyAllowedForStatus(status) {
		_, haveType := h["Content-Type"]
		if headerGet(h, "Content-Encoding") == "" && !haveType && !hasTE {
			sniff := w.pending
			if len(sniff) < 512 && len(p) > 0 {
				sniff = append(sniff, p[:min(len(p), 512-len(sniff))]...)
				w.pending = sniff[:len(w.pending)]
			}
			if len(sniff) > 0 {
				setCT = http.DetectContentType(sniff)
			}
		}
	} else {
		if status == http.StatusNotModified {
			del("Content-Type")
		}
		del("Content-Length")
		del("Transfer-Encoding")
	}
	if hasCL && hasTE && te != "identity" {
		del("Content-Length")
		hasCL = false
	}
	switch {
	case w.isHead || !bodyAllowedForStatus(status):
		del("Transfer-Encoding")
	case hasCL:
		del("Transfer-Encoding")
	case w.is11:
		if hasTE && te == "identity" {
			w.closeAfter = true
			del("Transfer-Encoding")
		} else {
			w.chunking, setTE = true, true
			if hasTE {
				del("Transfer-Encoding")
			}
		}
	default:
		w.closeAfter = true
		del("Transfer-Encoding")
	}
	if w.chunking {
		del("Content-Length")
	}
	if w.closeAfter && (!keepAlives || !hasToken(headerGet(h, "Connection"), "close")) {
		del("Connection")
		if w.is11 {
			setConn = "close"
		}
	}

	bw := w.fc.bw
	if w.is11 {
		bw.WriteString("HTTP/1.1 ")
	} else {
		bw.WriteString("HTTP/1.0 ")
	}
	if text := http.StatusText(status); text != "" {
		bw.Write(strconv.AppendInt(numBuf[:0], int64(status), 10))
		bw.WriteByte(' ')
		bw.WriteString(text)
		bw.WriteString("\r\n")
	} else {
		s := strconv.Itoa(status)
		bw.WriteString(strings.Repeat("0", max(0, 3-len(s))) + s + " status code " + s + "\r\n")
	}
	for k, vv := range h {
		if skip[k] {
			continue
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			if strings.ContainsAny(v, "\r\n") {
				v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
			}
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	if _, ok := h["Date"]; !ok {
		bw.WriteString("Date: ")
		bw.Write(httpDate())
		bw.WriteString("\r\n")
	}
	if setCT != "" {
		bw.WriteString("Content-Type: ")
		bw.WriteString(setCT)
		bw.WriteString("\r\n")
	}
	if setCL != "" {
		bw.WriteString("Content-Length: ")
		bw.WriteString(setCL)
		bw.WriteString("\r\n")
	}
	if setConn != "" {
		bw.WriteString("Connection: ")
		bw.WriteString(setConn)
		bw.WriteString("\r\n")
	}
	if setTE {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	_, w.err = bw.WriteString("\r\n")
	if len(w.pending) > 0 {
		pend := w.pending
		w.pending = w.pending[:0]
		w.body(pend)
		w.pending = pend[:0]
	}
}

func headerGet(h http.Header, k string) string {
	if v := h[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// httpDate is the Date field's value, made once a second.
func httpDate() []byte {
	now := time.Now()
	sec := now.Unix()
	if d := dateCache.Load(); d != nil && d.sec == sec {
		return d.b
	}
	d := &cachedDate{sec: sec, b: now.UTC().AppendFormat(nil, http.TimeFormat)}
	dateCache.Store(d)
	return d.b
}

type cachedDate struct {
	sec int64
	b   []byte
}

var dateCache atomic.Pointer[cachedDate]

// chanListener hands connections to net/http's server.
type chanListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) give(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// handedConn reads what the fast path had buffered, then the connection,
// through a framingScanner (net/http takes requests the fast path would
// reject).
type handedConn struct {
	net.Conn
	mu   sync.Mutex
	br   *bufio.Reader
	scan framingScanner
}

func (c *handedConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.scan.read(p, c.readBuffered)
}

func (c *handedConn) readBuffered(p []byte) (int, error) {
	if br := c.br; br != nil {
		if br.Buffered() > 0 {
			return br.Read(p)
		}
		c.br = nil
		br.Reset(nil)
		fastReaderPool.Put(br)
	}
	return c.Conn.Read(p)
}

// FastServer serves a Proxy on a listener with the gateway's own HTTP/1.1
// server, handing what it does not take to a net/http server (whose
// Handler should be the same proxy), as the gateway's plain listener does.
type FastServer struct{ s *fastServer }

// NewFastServer prepares to serve p on ln, with fallback behind it.
func NewFastServer(p *Proxy, fallback *http.Server, ln net.Listener) *FastServer {
	return &FastServer{newFastServer(p, fallback, ln)}
}

// Serve runs until Shutdown; it returns http.ErrServerClosed then.
func (f *FastServer) Serve() error {
	go f.s.fallback.Serve(f.s.handoff)
	return f.s.serve()
}

// Shutdown stops accepting and waits for requests in flight until ctx
// ends; then it shuts the fallback server down.
func (f *FastServer) Shutdown(ctx context.Context) error {
	f.s.shutdown(ctx)
	return f.s.fallback.Shutdown(ctx)
}

// CloseWrite lets net/http half-close before it hangs up on a client
// with an unread body, as it does on its own connections.
func (c *handedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
