package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// serveTLS serves the TLS listener. The gateway does the handshakes
// itself: an h2 connection goes to srv as the *tls.Conn net/http needs for
// HTTP/2, an HTTP/1.1 one to a second server that reads it through the
// framing scanner (framing.go; net/http reads a *tls.Conn of its own
// directly, so nothing could sit in between) and gives the handler the
// connection's TLS state, as srv would have.
func (g *Gateway) serveTLS(srv *http.Server, ln net.Listener, cfg *tls.Config) {
	h2, h1 := newChanListener(ln.Addr()), newChanListener(ln.Addr())
	var protos http.Protocols
	protos.SetHTTP1(true)
	srv1 := &http.Server{Handler: withTLSState(srv.Handler), Protocols: &protos, ConnContext: tlsStateContext,
		ReadHeaderTimeout: srv.ReadHeaderTimeout, IdleTimeout: srv.IdleTimeout, ErrorLog: srv.ErrorLog}
	g.servers = append(g.servers, srv1)
	// Serve sets HTTP/2 up in srv's TLS config, which must not be the one
	// the handshakes read meanwhile.
	srv.TLSConfig = cfg.Clone()
	go srv.Serve(h2)
	go srv1.Serve(h1)
	go func() {
		defer h2.Close()
		defer h1.Close()
		var delay time.Duration
		for {
			c, err := ln.Accept()
			if err != nil {
				var te interface{ Temporary() bool }
				if errors.As(err, &te) && te.Temporary() {
					delay = min(max(2*delay, 5*time.Millisecond), time.Second)
					time.Sleep(delay)
					continue
				}
				if !errors.Is(err, net.ErrClosed) {
					slog.Error("gateway listener stopped", "addr", ln.Addr().String(), "err", err)
				}
				return
			}
			delay = 0
			go handshake(c, cfg, srv.ReadHeaderTimeout, h1, h2)
		}
	}()
}

// handshake does the TLS handshake within timeout and hands the
// connection to the server for its protocol.
func handshake(c net.Conn, cfg *tls.Config, timeout time.Duration, h1, h2 *chanListener) {
	tc := tls.Server(c, cfg)
	_ = c.SetDeadline(time.Now().Add(timeout))
	if err := tc.Handshake(); err != nil {
		// A client speaking plain HTTP gets told, as net/http tells it.
		var re tls.RecordHeaderError
		if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader) {
			_, _ = re.Conn.Write([]byte("HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"))
		}
		c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	if tc.ConnectionState().NegotiatedProtocol == "h2" {
		h2.give(tc)
		return
	}
	h1.give(&scannedConn{Conn: tc})
}

func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

type tlsStateKey struct{}

// tlsStateContext keeps an HTTP/1.1 connection's TLS state for its
// requests.
func tlsStateContext(ctx context.Context, c net.Conn) context.Context {
	if sc, ok := c.(*scannedConn); ok {
		if tc, ok := sc.Conn.(*tls.Conn); ok {
			st := tc.ConnectionState()
			return context.WithValue(ctx, tlsStateKey{}, &st)
		}
	}
	return ctx
}

func withTLSState(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if st, ok := r.Context().Value(tlsStateKey{}).(*tls.ConnectionState); ok {
			r.TLS = st
		}
		h.ServeHTTP(w, r)
	})
}
