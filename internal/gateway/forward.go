package gateway

// The gateway's own HTTP/1.1 client. net/http's Transport pays for
// generality on every request (a Request clone, context values, a read and
// a write goroutine per connection, header maps built twice); this one
// writes the request head straight from the incoming request, parses the
// response head straight into the client's header map, and keeps a LIFO
// of idle keep-alive connections per instance address.

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	headBufSize  = 4 << 10  // bufio size on instance connections
	copyBufSize  = 32 << 10 // body copy buffers
	maxHeadBytes = 1 << 20  // an instance's response head beyond this is refused
)

// aLongTimeAgo is a deadline that makes blocked reads and writes return at once.
var aLongTimeAgo = time.Unix(1, 0)

var errBodyTooLarge = errors.New("request body larger than the route allows")

// clientBodyError is the client's request body breaking off: the client
// left or sent less than it announced.
type clientBodyError struct{ err error }

func (e *clientBodyError) Error() string { return "reading the request body: " + e.err.Error() }
func (e *clientBodyError) Unwrap() error { return e.err }

// badResponseError is an instance answering with something that is not
// HTTP/1.x.
type badResponseError struct{ msg string }

func (e *badResponseError) Error() string { return "invalid response from instance: " + e.msg }

type bodyMode uint8

const (
	bodyNone bodyMode = iota
	bodyLength
	bodyChunked
	bodyUntilClose // responses only
)

// plan is how one request goes upstream, fixed before the first attempt.
type plan struct {
	uri        string
	upgrade    string // the protocol asked for, when the client can be handed over
	body       bodyMode
	replayable bool // may go again after a keep-alive connection turned out closed
	t          Timeouts
}

// forward sends the request to one of ups and streams the answer back.
//
// A request goes again, on a new connection, when nothing of it can have
// been acted on: a kept-alive connection the instance had closed (its idle
// timeout, a restart) takes it to the same instance; a refused connection,
// or a new one closed before any answer, takes it to the next instance (up
// to maxMoves times), as instances come and go. Only requests that can be
// sent twice (no body, idempotent method) go again after they were
// written.
func (p *Proxy) forward(x *exchange, ups []string) {
	r := x.r
	pl := &x.plan
	pl.uri, pl.t = upstreamURI(r, x.route), p.timeouts(x.route)
	if r.Body != nil && r.Body != http.NoBody {
		switch {
		case r.ContentLength > 0:
			pl.body = bodyLength
		case r.ContentLength < 0:
			pl.body = bodyChunked
		}
	}
	// HTTP/2 has no Upgrade, and a ResponseWriter that cannot be hijacked
	// could not carry the switched protocol: such requests go without it.
	if r.ProtoMajor == 1 && len(r.Header["Upgrade"]) > 0 && headerHasToken(r.Header["Connection"], "upgrade") && canHijack(x.w) {
		pl.upgrade = r.Header.Get("Upgrade")
	}
	pl.replayable = pl.body == bodyNone && idempotent(r)

	pick := p.next.Add(1)
	addr := ups[pick%uint64(len(ups))]
	moves, fresh := 0, false
	for {
		x.rec.Upstream = addr
		uc, err := p.pool.get(r.Context(), addr, pl.t.Connect, x.start, fresh)
		var again bool
		if err == nil {
			if err, again = p.roundTrip(x, uc, pl); err == nil {
				return
			}
			if again && uc.reused {
				fresh = true // the same instance, on a new connection
				continue
			}
		} else {
			// Nothing was sent: refused, or reset by a listener closing.
			again = errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
		}
		// A few moves: while instances are replaced, the list a slow
		// request started with can be two changes old.
		if again && moves < maxMoves && r.Context().Err() == nil {
			if next, ok := nextInstance(x.route, addr, pick); ok {
				addr, fresh = next, false
				moves++
				continue
			}
		}
		p.upstreamFailed(x, err)
		return
	}
}

const maxMoves = 3

// nextInstance is the instance after failed in the route's list as it is
// now (the list the request started with may be out of date already).
func nextInstance(route *Route, failed string, pick uint64) (string, bool) {
	ups := route.Upstreams()
	for i, a := range ups {
		if a == failed {
			if next := ups[(i+1)%len(ups)]; next != failed {
				return next, true
			}
			return "", false
		}
	}
	if len(ups) == 0 {
		return "", false
	}
	return ups[pick%uint64(len(ups))], true
}

// roundTrip sends the request on uc and streams the answer to the client.
// It returns an error when the gateway must answer instead (the caller
// classifies it), with again set when the request may go again on
// another connection: nothing of the answer came, and either nothing was
// sent or the request can be sent twice.
func (p *Proxy) roundTrip(x *exchange, uc *upConn, pl *plan) (err error, again bool) {
	r, w := x.r, x.w
	writeHead(uc.bw, r, pl, x.rec.RequestID)
	h := w.Header()
	var hd respHead
	if pl.body == bodyNone {
		uc.watch(r.Context(), mono(x.start)+int64(pl.t.Read))
		if err = uc.bw.Flush(); err == nil {
			err = readHead(uc.br, h, &hd, &uc.heads)
		}
	} else {
		uc.watch(r.Context(), 0) // the head timeout starts when the body is sent
		if r.ProtoMajor == 1 {
			// The body keeps streaming while the answer does (the
			// server would otherwise swallow what is left of it at the
			// first response write).
			x.duplex = http.NewResponseController(w).EnableFullDuplex() == nil
		}
		go x.sendBody(uc)
		err = readHead(uc.br, h, &hd, &uc.heads)
	}
	for err == nil && hd.status < 200 && hd.status != http.StatusSwitchingProtocols {
		clear(h) // an interim answer (100 Continue, 103): the real one follows
		err = readHead(uc.br, h, &hd, &uc.heads)
	}
	uc.headArrived()
	if err != nil {
		if pl.body != bodyNone {
			if berr := x.finishBody(uc); isFatalBodyErr(berr) {
				err = berr // the body writer cut the exchange; its error says why
			}
		}
		uc.unwatch()
		uc.close()
		clear(h)
		return err, pl.replayable && !hd.started && isStale(err)
	}
	if hd.status == http.StatusSwitchingProtocols {
		interrupted := uc.unwatch()
		if pl.body != bodyNone {
			x.finishBody(uc)
		}
		if pl.upgrade == "" || !strings.EqualFold(hd.upgrade, pl.upgrade) {
			uc.close()
			return &badResponseError{"101 Switching Protocols to " + strconv.Quote(hd.upgrade) + " unasked"}, false
		}
		if interrupted {
			uc.close()
			x.rec.Status = StatusClientClosed
			return nil, false
		}
		p.tunnel(x, uc, &hd)
		return nil, false
	}
	if pl.upgrade != "" {
		hd.close = true // the instance declined to switch; it may still expect to
		// The client's connection ends too: after a head asking to
		// switch, the framing scanner (framing.go) no longer looks at it.
		h.Set("Connection", "close")
	}

	if x.duplex {
		if !x.bodyComplete.Load() {
			// The instance answers before it has the whole body: the
			// rest of the upload may go unread, and then the client's
			// connection cannot carry another request (see
			// closeUnreadBody).
			h.Set("Connection", "close")
		}
	}
	if len(hd.spare) < cap(hd.spare) {
		h["X-Request-Id"] = append(hd.spare, x.rec.RequestID)
	} else {
		h["X-Request-Id"] = []string{x.rec.RequestID}
	}
	w.WriteHeader(hd.status)
	x.wroteHeader = true
	x.rec.Status = hd.status

	var rerr, werr error
	mode := hd.bodyMode(r.Method == http.MethodHead)
	switch mode {
	case bodyLength:
		rerr, werr = x.pump(uc.br, hd.length)
	case bodyUntilClose:
		rerr, werr = x.pump(uc.br, -1)
	case bodyChunked:
		rerr, werr = x.copyChunked(uc.br, h)
	}
	reusable := !hd.close && mode != bodyUntilClose && rerr == nil && werr == nil
	if pl.body != bodyNone {
		if berr := x.finishBody(uc); berr != nil {
			reusable = false
			if rerr != nil && isFatalBodyErr(berr) {
				rerr = berr // the body writer cut the connection; its error says why
			}
		}
	}
	if uc.unwatch() {
		reusable = false // the deadlines are poisoned
	}
	if reusable && uc.br.Buffered() == 0 {
		p.pool.put(uc, x.start)
	} else {
		uc.close()
	}
	switch {
	case werr != nil:
		// The client left mid-answer; nothing to tell anyone.
	case rerr != nil:
		return rerr, false
	}
	return nil, false
}

// isStale tells a kept-alive connection the instance had closed (its
// idle timeout, a restart) from an instance failing the request.
func isStale(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}

// isFatalBodyErr: the body writer stopped the exchange itself.
func isFatalBodyErr(err error) bool {
	var ce *clientBodyError
	return errors.Is(err, errBodyTooLarge) || errors.As(err, &ce) || isTimeout(err)
}

// sendBody streams the request body upstream; it runs beside the reading
// of the answer, so an instance may answer early, or while the body is
// still coming (HTTP/2 clients streaming both ways).
func (x *exchange) sendBody(uc *upConn) {
	err := x.writeBody(uc)
	x.mu.Lock()
	x.bodyOver = true
	interrupted := x.bodyInterrupted
	if !interrupted {
		x.bodyErr = err
	}
	switch {
	case interrupted:
	case err == nil || !isFatalBodyErr(err):
		// Sent, or the instance stopped reading (it may have answered):
		// the wait for the answer's head starts now.
		uc.startHeadWait(mono(time.Now()) + int64(x.plan.t.Read))
	default:
		// The request cannot be completed: wake the reader, which takes
		// this error as the cause.
		_ = uc.conn.SetDeadline(aLongTimeAgo)
	}
	x.mu.Unlock()
	x.bodyDone <- err
}

func (x *exchange) writeBody(uc *upConn) error {
	pl := &x.plan
	bufp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bufp)
	buf := *bufp
	limit := x.route.MaxBodyBytes
	var total int64
	var hex [20]byte
	// A client that stops sending mid-body would hold the instance's
	// connection forever: each read of the body gets the send timeout.
	rc := http.NewResponseController(x.w)
	deadlines := true
	for {
		if deadlines {
			deadlines = rc.SetReadDeadline(time.Now().Add(pl.t.Send)) == nil
		}
		n, rerr := x.r.Body.Read(buf)
		if rerr != nil && rerr != io.EOF {
			return &clientBodyError{rerr}
		}
		eof := rerr == io.EOF
		if eof {
			if deadlines {
				_ = rc.SetReadDeadline(time.Time{})
			}
			// Known before the last bytes go up, so an answer that
			// follows them finds the body complete.
			x.bodyComplete.Store(true)
		}
		if n > 0 {
			total += int64(n)
			x.bytesIn = total
			if limit > 0 && total > limit {
				return errBodyTooLarge
			}
			if pl.body == bodyChunked {
				uc.bw.Write(strconv.AppendInt(hex[:0], int64(n), 16))
				uc.bw.WriteString("\r\n")
				uc.bw.Write(buf[:n])
				uc.bw.WriteString("\r\n")
			} else {
				uc.bw.Write(buf[:n])
			}
		}
		if eof && pl.body == bodyChunked {
			uc.bw.WriteString("0\r\n\r\n")
		}
		if n > 0 || eof {
			_ = uc.conn.SetWriteDeadline(time.Now().Add(pl.t.Send))
			if err := uc.bw.Flush(); err != nil {
				return err
			}
		}
		if eof {
			_ = uc.conn.SetWriteDeadline(time.Time{})
			return nil
		}
	}
}

// finishBody waits for the body writer, interrupting it if it is still at
// work (the answer is over, or failed), and returns the error that ended
// the body when it ended the exchange itself.
func (x *exchange) finishBody(uc *upConn) error {
	select {
	case err := <-x.bodyDone:
		return err
	default:
	}
	x.mu.Lock()
	if x.bodyOver || x.bodyComplete.Load() {
		// It is done and about to say so, or has read the whole body and
		// is sending its end (bounded by the send timeout).
		x.mu.Unlock()
		return <-x.bodyDone
	}
	x.bodyInterrupted = true
	x.mu.Unlock()
	_ = uc.conn.SetDeadline(aLongTimeAgo)
	// The writer may be waiting for the client's next bytes. Over
	// HTTP/1 that wait can only be cut by the connection's read deadline,
	// which leaves the connection unusable: the answer says
	// "Connection: close" then (see closeUnreadBody).
	if x.r.ProtoMajor == 1 {
		_ = http.NewResponseController(x.w).SetReadDeadline(aLongTimeAgo)
	} else {
		x.r.Body.Close()
	}
	<-x.bodyDone
	return errBodyUnfinished
}

var errBodyUnfinished = errors.New("the answer ended before the request body")

// closeUnreadBody reports whether an HTTP/1 answer must close the client's
// connection because the gateway did not read the request body to its
// end. The server would then read the rest itself after the handler, and
// with full duplex on (roundTrip) net/http restarts its background read
// after it has stopped it, which collides with the next request's read;
// on a connection that closes, nothing reads next.
func (x *exchange) closeUnreadBody() bool {
	return x.duplex && !x.bodyComplete.Load()
}

// pump copies n bytes (n < 0: until EOF) of an answer's body from br to
// the client. It flushes before waiting for the instance, so a streamed
// answer reaches the client as it comes.
func (x *exchange) pump(br *bufio.Reader, n int64) (rerr, werr error) {
	w := x.w
	var bufp *[]byte
	defer func() {
		if bufp != nil {
			copyBufPool.Put(bufp)
		}
	}()
	for n != 0 {
		if b := br.Buffered(); b > 0 {
			if n >= 0 && int64(b) > n {
				b = int(n)
			}
			chunk, _ := br.Peek(b)
			m, err := w.Write(chunk)
			x.rec.BytesOut += int64(m)
			br.Discard(b)
			if err != nil {
				return nil, err
			}
			if n > 0 {
				n -= int64(b)
			}
			continue
		}
		x.flush()
		if bufp == nil {
			bufp = copyBufPool.Get().(*[]byte)
		}
		buf := *bufp
		if n >= 0 && n < int64(len(buf)) {
			buf = buf[:n]
		}
		// An empty bufio.Reader reads a large buffer straight from the
		// connection.
		m, err := br.Read(buf)
		if m > 0 {
			wm, werr := w.Write(buf[:m])
			x.rec.BytesOut += int64(wm)
			if werr != nil {
				return nil, werr
			}
			if n > 0 {
				n -= int64(m)
			}
		}
		if err == io.EOF && n < 0 {
			return nil, nil
		}
		if err == io.EOF {
			return io.ErrUnexpectedEOF, nil
		}
		if err != nil {
			return err, nil
		}
	}
	return nil, nil
}

// flush sends the client what it has so far, before the gateway waits for
// the instance: a streamed answer (server-sent events, a long poll's head)
// must not sit in a buffer.
func (x *exchange) flush() {
	if f, ok := x.w.(http.Flusher); ok {
		f.Flush()
	}
}

// copyChunked decodes a chunked body to the client; its trailer fields go
// to the client as trailers.
func (x *exchange) copyChunked(br *bufio.Reader, h http.Header) (rerr, werr error) {
	total := 0
	for {
		if br.Buffered() == 0 {
			x.flush()
		}
		line, err := readLine(br, &total)
		if err != nil {
			return eofUnexpected(err), nil
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i] // chunk extensions mean nothing to us
		}
		size, ok := parseHex(bytes.TrimRight(line, " \t"))
		if !ok {
			return &badResponseError{"bad chunk size"}, nil
		}
		if size == 0 {
			break
		}
		if rerr, werr := x.pump(br, size); rerr != nil || werr != nil {
			return eofUnexpected(rerr), werr
		}
		line, err = readLine(br, &total)
		if err != nil {
			return eofUnexpected(err), nil
		}
		if len(line) != 0 {
			return &badResponseError{"chunk not followed by CRLF"}, nil
		}
	}
	for {
		line, err := readLine(br, &total)
		if err != nil {
			return eofUnexpected(err), nil
		}
		if len(line) == 0 {
			return nil, nil
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 {
			return &badResponseError{"bad trailer line"}, nil
		}
		key, ok := canonicalKey(line[:i])
		if !ok {
			return &badResponseError{"bad trailer name"}, nil
		}
		k := http.TrailerPrefix + key
		h[k] = append(h[k], string(trimOWS(line[i+1:])))
	}
}

func eofUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func parseHex(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			n = n<<4 | int64(c-'0')
		case 'a' <= c && c <= 'f':
			n = n<<4 | int64(c-'a'+10)
		case 'A' <= c && c <= 'F':
			n = n<<4 | int64(c-'A'+10)
		default:
			return 0, false
		}
	}
	return n, true
}

// writeHead writes the request line and header fields: the client's
// end-to-end fields as they came, the gateway's own, and the framing of
// the body as the gateway sends it.
func writeHead(bw *bufio.Writer, r *http.Request, pl *plan, reqID string) {
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	bw.WriteString(pl.uri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(r.Host)
	bw.WriteString("\r\n")
	conn := r.Header["Connection"]
	for k, vv := range r.Header {
		if skipRequestHeader(k) || len(conn) > 0 && headerHasToken(conn, k) {
			continue
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	bw.WriteString("X-Forwarded-For: ")
	for _, v := range r.Header["X-Forwarded-For"] {
		bw.WriteString(v)
		bw.WriteString(", ")
	}
	bw.WriteString(clientIP(r.RemoteAddr))
	bw.WriteString("\r\nX-Forwarded-Host: ")
	bw.WriteString(r.Host)
	if r.TLS != nil {
		bw.WriteString("\r\nX-Forwarded-Proto: https\r\nX-Request-Id: ")
	} else {
		bw.WriteString("\r\nX-Forwarded-Proto: http\r\nX-Request-Id: ")
	}
	bw.WriteString(reqID)
	bw.WriteString("\r\n")
	if pl.upgrade != "" {
		bw.WriteString("Connection: Upgrade\r\nUpgrade: ")
		bw.WriteString(pl.upgrade)
		bw.WriteString("\r\n")
	}
	switch pl.body {
	case bodyLength:
		var num [20]byte
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(num[:0], r.ContentLength, 10))
		bw.WriteString("\r\n")
	case bodyChunked:
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	default:
		// Servers may want a length on requests that usually have a body.
		if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
			bw.WriteString("Content-Length: 0\r\n")
		}
	}
	bw.WriteString("\r\n")
}

// skipRequestHeader: hop-by-hop fields, and those the gateway writes itself.
func skipRequestHeader(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length", "Host", "Expect",
		"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Request-Id":
		return true
	}
	return false
}

// headerHasToken reports whether a comma-separated field lists token.
func headerHasToken(values []string, token string) bool {
	for _, v := range values {
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

func clientIP(remote string) string {
	i := strings.LastIndexByte(remote, ':')
	if i < 0 {
		return remote
	}
	host := remote[:i]
	if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	return host
}

func idempotent(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return len(r.Header["Idempotency-Key"]) > 0 || len(r.Header["X-Idempotency-Key"]) > 0
}

// upstreamURI is the request target sent upstream: the client's, with the
// route's path prefix replaced when it rewrites.
func upstreamURI(r *http.Request, route *Route) string {
	if route.RewritePath == "" {
		if u := r.RequestURI; u != "" && u[0] == '/' {
			return u
		}
		return r.URL.RequestURI()
	}
	prefix := strings.TrimSuffix(route.Path, "/")
	esc := r.URL.EscapedPath()
	var rest string
	if strings.HasPrefix(esc, prefix) {
		rest = esc[len(prefix):]
	} else {
		// The prefix is escaped differently in the request: cut it from the
		// decoded path and escape the rest again.
		rest = (&url.URL{Path: strings.TrimPrefix(r.URL.Path, prefix)}).EscapedPath()
	}
	path := strings.TrimSuffix(route.RewritePath, "/") + rest
	if path == "" || path[0] != '/' {
		path = "/" + path
	}
	if r.URL.RawQuery != "" || r.URL.ForceQuery {
		path += "?" + r.URL.RawQuery
	}
	return path
}

func canHijack(w http.ResponseWriter) bool {
	for {
		if _, ok := w.(http.Hijacker); ok {
			return true
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return false
		}
		w = u.Unwrap()
	}
}

// respHead is what the gateway needs to know of an answer's head; the
// header fields themselves go straight into the client's header map.
type respHead struct {
	status  int
	length  int64 // Content-Length, -1 when absent
	chunked bool
	te      bool // some Transfer-Encoding frames the body
	close   bool // the connection ends with this answer
	upgrade string
	started bool     // some of the answer arrived: the request was taken
	spare   []string // what is left of the values' backing array
}

func (hd *respHead) bodyMode(head bool) bodyMode {
	switch {
	case head || hd.status < 200 || hd.status == http.StatusNoContent || hd.status == http.StatusNotModified:
		return bodyNone
	case hd.chunked:
		return bodyChunked
	case hd.te || hd.length < 0:
		return bodyUntilClose
	case hd.length == 0:
		return bodyNone
	}
	return bodyLength
}

// readHead parses a status line and header fields into hd and h. Values
// share one backing array, and common names are interned, so a typical
// head costs one allocation per value and one for them all.
func readHead(br *bufio.Reader, h http.Header, hd *respHead, hc *headCache) error {
	*hd = respHead{length: -1}
	if _, err := br.Peek(1); err != nil {
		return err
	}
	hd.started = true
	total := 0
	line, err := readLine(br, &total)
	if err != nil {
		return eofUnexpected(err)
	}
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || line[8] != ' ' || len(line) > 12 && line[12] != ' ' {
		return &badResponseError{"bad status line " + strconv.Quote(string(line[:min(len(line), 40)]))}
	}
	switch line[7] {
	case '0':
		hd.close = true // HTTP/1.0 keep-alive is not worth the trouble
	case '1':
	default:
		return &badResponseError{"unknown HTTP/1 version"}
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return &badResponseError{"bad status code"}
		}
		hd.status = hd.status*10 + int(c-'0')
	}
	if hd.status < 100 {
		return &badResponseError{"bad status code"}
	}

	// One backing array for the values, as many as the last head had or
	// as there are lines here (one more for the gateway's X-Request-Id).
	var vals []string
	if hc != nil && hc.lines > 0 {
		vals = make([]string, 0, hc.lines+1)
	} else if b, _ := br.Peek(br.Buffered()); len(b) > 0 {
		vals = make([]string, 0, min(bytes.Count(b, []byte{'\n'}), 64)+1)
	}
	var dropped []string // named in Connection
	n := 0
	for ; ; n++ {
		line, err := readLine(br, &total)
		if err != nil {
			return eofUnexpected(err)
		}
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return &badResponseError{"folded header line"}
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 {
			return &badResponseError{"header line without a colon"}
		}
		kb, vb := line[:i], trimOWS(line[i+1:])
		cached := hc != nil && n < len(hc.raw)
		var key string
		if cached && hc.raw[n] == string(kb) {
			key = hc.key[n]
		} else {
			var ok bool
			if key, ok = canonicalKey(kb); !ok {
				return &badResponseError{"bad header name " + strconv.Quote(string(kb))}
			}
			if cached {
				hc.raw[n], hc.key[n] = string(kb), key
			}
		}
		switch key {
		case "Content-Length":
			n, ok := parseLength(vb)
			if !ok || hd.length >= 0 && hd.length != n {
				return &badResponseError{"bad Content-Length"}
			}
			if hd.length >= 0 {
				continue
			}
			hd.length = n
		case "Transfer-Encoding":
			hd.te = true
			v := string(vb)
			last := v
			if j := strings.LastIndexByte(v, ','); j >= 0 {
				last = v[j+1:]
			}
			hd.chunked = strings.EqualFold(strings.TrimSpace(last), "chunked")
			continue
		case "Connection":
			for _, t := range strings.Split(string(vb), ",") {
				t = strings.TrimSpace(t)
				switch {
				case strings.EqualFold(t, "close"):
					hd.close = true
				case t == "" || strings.EqualFold(t, "keep-alive") || strings.EqualFold(t, "upgrade"):
				default:
					dropped = append(dropped, http.CanonicalHeaderKey(t))
				}
			}
			continue
		case "Upgrade":
			hd.upgrade = string(vb)
			continue
		case "Keep-Alive", "Proxy-Connection", "Te", "Proxy-Authenticate":
			continue
		}
		var v string
		switch {
		case !cached:
			v = string(vb)
		case hc.val[n] == string(vb):
			v = hc.val[n]
		default:
			v = string(vb)
			hc.val[n] = v
		}
		if old, ok := h[key]; ok {
			h[key] = append(old, v)
		} else if len(vals)+1 < cap(vals) {
			vals = append(vals, v)
			h[key] = vals[len(vals)-1 : len(vals) : len(vals)]
		} else {
			h[key] = []string{v}
		}
	}
	if hd.te {
		// Transfer-Encoding overrides Content-Length (and a body framed
		// by an unknown coding ends with the connection).
		delete(h, "Content-Length")
		hd.length = -1
		if !hd.chunked {
			hd.close = true
		}
	}
	for _, k := range dropped {
		delete(h, k)
	}
	hd.spare = vals[len(vals):]
	if hc != nil {
		hc.lines = n
	}
	return nil
}

// readLine returns the next line without its CRLF, valid until the next
// read from br. Lines longer than the buffer are put together in a copy.
func readLine(br *bufio.Reader, total *int) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		long := append([]byte(nil), line...)
		for err == bufio.ErrBufferFull {
			line, err = br.ReadSlice('\n')
			long = append(long, line...)
			if len(long) > maxHeadBytes {
				return nil, &badResponseError{"header too long"}
			}
		}
		line = long
	}
	if err != nil {
		return nil, err
	}
	if *total += len(line); *total > maxHeadBytes {
		return nil, &badResponseError{"header too long"}
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func parseLength(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// commonKeys interns the header names most answers carry.
var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"Accept-Ranges", "Access-Control-Allow-Credentials", "Access-Control-Allow-Headers",
		"Access-Control-Allow-Methods", "Access-Control-Allow-Origin", "Access-Control-Expose-Headers",
		"Access-Control-Max-Age", "Age", "Alt-Svc", "Cache-Control", "Connection", "Content-Disposition",
		"Content-Encoding", "Content-Language", "Content-Length", "Content-Location", "Content-Range",
		"Content-Security-Policy", "Content-Type", "Date", "Etag", "Expires", "Keep-Alive", "Last-Modified",
		"Link", "Location", "Permissions-Policy", "Pragma", "Proxy-Authenticate", "Proxy-Connection",
		"Referrer-Policy", "Retry-After", "Sec-Websocket-Accept", "Sec-Websocket-Extensions",
		"Sec-Websocket-Protocol", "Server", "Set-Cookie", "Strict-Transport-Security", "Te", "Trailer",
		"Transfer-Encoding", "Upgrade", "Vary", "Via", "Www-Authenticate", "X-Content-Type-Options",
		"X-Frame-Options", "X-Powered-By", "X-Request-Id", "X-Xss-Protection",
	} {
		m[k] = k
	}
	return m
}()

// canonicalKey is textproto's canonical form of a header name, without
// allocating for names already canonical and common; ok is false for
// names that are not HTTP tokens.
func canonicalKey(k []byte) (string, bool) {
	canonical, upper := true, true
	for _, c := range k {
		if !isTokenChar(c) {
			return "", false
		}
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			canonical = false
		}
		upper = c == '-'
	}
	if canonical {
		if s, ok := commonKeys[string(k)]; ok {
			return s, true
		}
		return string(k), true
	}
	var small [64]byte
	b := append(small[:0], k...)
	upper = true
	for i, c := range b {
		switch {
		case upper && 'a' <= c && c <= 'z':
			b[i] = c - ('a' - 'A')
		case !upper && 'A' <= c && c <= 'Z':
			b[i] = c + ('a' - 'A')
		}
		upper = c == '-'
	}
	if s, ok := commonKeys[string(b)]; ok {
		return s, true
	}
	return string(b), true
}

func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// tunnel hands the client's connection over to the instance after a 101:
// bytes go both ways until either side closes.
func (p *Proxy) tunnel(x *exchange, uc *upConn, hd *respHead) {
	cconn, cbuf, err := http.NewResponseController(x.w).Hijack()
	if err != nil {
		uc.close()
		p.upstreamFailed(x, &badResponseError{"cannot take over the client's connection: " + err.Error()})
		return
	}
	x.wroteHeader = true
	x.rec.Status = http.StatusSwitchingProtocols
	// The server's deadlines were for one request, not for a session.
	_ = cconn.SetDeadline(time.Time{})
	_ = uc.conn.SetDeadline(time.Time{})

	h := x.w.Header()
	h["X-Request-Id"] = []string{x.rec.RequestID}
	cbuf.Writer.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	_ = h.Write(cbuf.Writer)
	cbuf.Writer.WriteString("Connection: Upgrade\r\nUpgrade: ")
	cbuf.Writer.WriteString(hd.upgrade)
	cbuf.Writer.WriteString("\r\n\r\n")
	if err := cbuf.Writer.Flush(); err != nil {
		cconn.Close()
		uc.close()
		return
	}
	in := make(chan int64, 1)
	go func() {
		n := copyTunnel(uc.conn, cbuf.Reader, cconn)
		// Either side closing ends the session for both.
		cconn.Close()
		uc.conn.Close()
		in <- n
	}()
	out := copyTunnel(cconn, uc.br, uc.conn)
	cconn.Close()
	uc.conn.Close()
	x.bytesIn += <-in
	x.rec.BytesOut += out
	uc.close()
}

// copyTunnel copies what src has buffered, then srcConn, to dst.
func copyTunnel(dst net.Conn, src *bufio.Reader, srcConn net.Conn) int64 {
	var n int64
	if b := src.Buffered(); b > 0 {
		p, _ := src.Peek(b)
		m, err := dst.Write(p)
		n += int64(m)
		if err != nil {
			return n
		}
		src.Discard(b)
	}
	_, dtcp := dst.(*net.TCPConn)
	_, stcp := srcConn.(*net.TCPConn)
	if dtcp && stcp {
		m, _ := io.Copy(dst, srcConn) // splice(2): no copy through user space
		return n + m
	}
	bufp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bufp)
	m, _ := io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{srcConn}, *bufp)
	return n + m
}
