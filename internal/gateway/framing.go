package gateway

// Request smuggling: RFC 9112 §6.3 says a request with both Content-Length
// and Transfer-Encoding "ought to be handled as an error", and §6.1 that
// the server must close the connection after answering it. net/http takes
// such a request (Transfer-Encoding wins, Content-Length is dropped before
// the handler sees it) and keeps the connection, so the gateway reads what
// every net/http connection carries through framingScanner: it follows the
// framing of each request as net/http will read it, and when a head has
// both fields it ends that head with a line net/http rejects, which
// net/http answers with its "400 Bad Request" and a closed connection. The fast path
// never serves a request with Transfer-Encoding (it hands those to
// net/http), so both answer alike.

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
)

// errSmuggling is scan's verdict on a head with both fields.
var errSmuggling = errors.New("request has both Content-Length and Transfer-Encoding (RFC 9112 §6.3)")

type scanState uint8

const (
	scanHead      scanState = iota // in a request head
	scanBody                       // skipping left bytes of a body
	scanChunkSize                  // a chunk-size line
	scanChunkData                  // skipping left bytes of a chunk, then its CRLF
	scanTrailer                    // trailer lines after the last chunk
	scanPass                       // not HTTP/1 requests any more (h2c, a tunnel), or framing net/http rejects anyway
	scanRejected                   // a smuggling head was found
)

// maxScanLine is how much of a line the scanner keeps; the names it looks
// for are short, and a longer value of theirs is treated as suspect.
const maxScanLine = 1024

// framingScanner follows a stream of HTTP/1 requests byte by byte. It
// keeps no more than one line, whatever the reads' sizes.
type framingScanner struct {
	state scanState
	left  int64 // bytes left of a body or chunk (with its CRLF)
	line  []byte
	long  bool // the line is longer than maxScanLine
	lines int  // lines of this head so far

	http10, folded                   bool
	lengths, encodings               int
	length                           int64
	badLength, chunked               bool
	upgradeHeader, connectionUpgrade bool

	rejectLine []byte // what is left to give of rejectLine
}

// scan looks at p, the next bytes net/http will read; it returns how many
// of them net/http may have, and errSmuggling once a head has both fields
// (the bytes before that head's last LF go first, so net/http is mid-head
// when it gets the error).
func (s *framingScanner) scan(p []byte) (int, error) {
	for i := 0; i < len(p); {
		switch s.state {
		case scanPass:
			return len(p), nil
		case scanRejected:
			return i, errSmuggling
		case scanBody, scanChunkData:
			n := int(min(s.left, int64(len(p)-i)))
			s.left -= int64(n)
			i += n
			if s.left == 0 {
				if s.state == scanBody {
					s.startHead()
				} else {
					s.state = scanChunkSize
				}
			}
			continue
		}
		j := bytes.IndexByte(p[i:], '\n')
		if j < 0 {
			s.keep(p[i:])
			return len(p), nil
		}
		s.keep(p[i : i+j])
		line := bytes.TrimSuffix(s.line, []byte{'\r'})
		s.endLine(line)
		s.line, s.long = s.line[:0], false
		if s.state == scanRejected {
			return i + j, errSmuggling
		}
		i += j + 1
	}
	return len(p), nil
}

func (s *framingScanner) keep(b []byte) {
	if room := maxScanLine - len(s.line); len(b) > room {
		b, s.long = b[:room], true
	}
	s.line = append(s.line, b...)
}

func (s *framingScanner) startHead() {
	line := s.line[:0]
	*s = framingScanner{line: line}
}

func (s *framingScanner) endLine(line []byte) {
	switch s.state {
	case scanHead:
		s.headLine(line)
	case scanChunkSize:
		size, ok := chunkSize(line)
		switch {
		case !ok || s.long:
			s.state = scanPass // net/http fails the body and closes
		case size == 0:
			s.state = scanTrailer
		default:
			s.state, s.left = scanChunkData, size+2 // and its CRLF
		}
	case scanTrailer:
		if len(line) == 0 {
			s.startHead()
		}
	}
}

func (s *framingScanner) headLine(line []byte) {
	s.lines++
	if s.lines == 1 {
		// The request line. An empty one, or h2c's preface, means the
		// stream is not (or no longer) HTTP/1 requests the scanner
		// understands; net/http rejects the first or switches protocol.
		if len(line) == 0 || bytes.HasPrefix(line, []byte("PRI ")) {
			s.state = scanPass
		}
		s.http10 = bytes.HasSuffix(line, []byte(" HTTP/1.0"))
		return
	}
	if len(line) == 0 {
		s.endHead()
		return
	}
	if line[0] == ' ' || line[0] == '\t' {
		s.folded = true
		return
	}
	name, value, ok := bytes.Cut(line, []byte{':'})
	if !ok {
		return // net/http rejects the head
	}
	value = trimOWS(value)
	switch {
	case bytes.EqualFold(name, []byte("Content-Length")):
		n, ok := parseLength(value)
		if !ok || s.long || s.lengths > 0 && n != s.length {
			s.badLength = true
		}
		s.lengths++
		s.length = n
	case bytes.EqualFold(name, []byte("Transfer-Encoding")):
		s.encodings++
		s.chunked = !s.long && bytes.EqualFold(value, []byte("chunked"))
	case bytes.EqualFold(name, []byte("Connection")):
		s.connectionUpgrade = s.connectionUpgrade || s.long || hasToken(string(value), "upgrade")
	case bytes.EqualFold(name, []byte("Upgrade")):
		s.upgradeHeader = true
	}
}

// endHead picks the body's framing as net/http's readTransfer does.
func (s *framingScanner) endHead() {
	switch {
	case s.lengths > 0 && s.encodings > 0:
		s.state = scanRejected
	case s.folded || s.upgradeHeader && s.connectionUpgrade:
		// Framing the scanner cannot be sure of, or a tunnel may follow:
		// the rest is not requests to look at.
		s.state = scanPass
	case s.encodings > 0 && !s.http10:
		if s.encodings > 1 || !s.chunked {
			s.state = scanPass // 501 and closed
			return
		}
		s.state = scanChunkSize
		s.line = s.line[:0]
	case s.lengths > 0:
		if s.badLength {
			s.state = scanPass // 400 and closed
			return
		}
		if s.length == 0 {
			s.startHead()
			return
		}
		s.state, s.left = scanBody, s.length
	default:
		s.startHead()
	}
}

func chunkSize(line []byte) (int64, bool) {
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = trimOWS(line)
	if len(line) == 0 || len(line) > 15 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(line), 16, 64)
	return n, err == nil && n >= 0
}

// read reads through s from src, the connection. Where a smuggling head
// would end, net/http gets a header line it rejects instead (it answers
// 400 and closes): an error from the read would not do, as net/http may
// be reading ahead while it answers the previous request, and would cancel
// that one.
func (s *framingScanner) read(p []byte, src func([]byte) (int, error)) (int, error) {
	if s.state == scanRejected {
		if len(s.rejectLine) == 0 {
			return 0, io.EOF
		}
		n := copy(p, s.rejectLine)
		s.rejectLine = s.rejectLine[n:]
		return n, nil
	}
	n, err := src(p)
	if n > 0 && s.state != scanPass {
		if ok, serr := s.scan(p[:n]); serr != nil {
			// p[ok] is the head's last LF; what follows is not given.
			s.rejectLine = []byte(rejectLine)
			m := copy(p[ok:], s.rejectLine)
			s.rejectLine = s.rejectLine[m:]
			return ok + m, nil
		}
	}
	return n, err
}

// rejectLine ends a smuggling head in place of its last LF: a line without
// a colon (the NUL keeps it one whether the blank line began with CR or
// not), which net/http refuses with "400 Bad Request".
const rejectLine = "\x00\r\n\r\n"

// scannedConn is a connection net/http serves, read through a
// framingScanner.
type scannedConn struct {
	net.Conn
	mu   sync.Mutex
	scan framingScanner
}

func (c *scannedConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.scan.read(p, c.Conn.Read)
}

// CloseWrite lets net/http half-close before it hangs up on a client
// with an unread body.
func (c *scannedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// scannedListener gives net/http its connections read through a scanner.
type scannedListener struct{ net.Listener }

func (l scannedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &scannedConn{Conn: c}, nil
}
