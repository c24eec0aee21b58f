package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/berth-platform/berth/internal/model"
)

// Proxy is the HTTP side of the gateway.
type Proxy struct {
	table tableHolder
	next  atomic.Uint64
	rp    *httputil.ReverseProxy
}

type routeKey struct{}

// NewProxy returns a proxy with an empty table. readTimeout bounds the
// wait for an instance's response headers (the 504 case).
func NewProxy(readTimeout time.Duration) *Proxy {
	p := &Proxy{}
	transport := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		ResponseHeaderTimeout: readTimeout,
		MaxIdleConnsPerHost:   64,
		ForceAttemptHTTP2:     false,
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			target := pr.In.Context().Value(upstreamKey{}).(string)
			pr.SetURL(&url.URL{Scheme: "http", Host: target})
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport:    transport,
		ErrorHandler: p.upstreamError,
	}
	return p
}

type upstreamKey struct{}

// SetRoutes replaces the routing table; requests in flight keep theirs.
func (p *Proxy) SetRoutes(routes []Route) { p.table.p.Store(NewTable(routes)) }

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := r.Header.Get("X-Request-Id")
	if reqID == "" {
		reqID = model.NewID("req")
		r.Header.Set("X-Request-Id", reqID)
	}
	route := p.table.load().Match(r)
	if route == nil {
		p.fail(w, r, unknownHost(r.Host), reqID)
		return
	}
	ups := route.Upstreams()
	if len(ups) == 0 {
		p.fail(w, r, noReadyInstance(route), reqID)
		return
	}
	target := ups[int(p.next.Add(1))%len(ups)]
	ctx := context.WithValue(r.Context(), upstreamKey{}, target)
	ctx = context.WithValue(ctx, routeKey{}, route)
	p.rp.ServeHTTP(w, r.WithContext(ctx))
}

func (p *Proxy) fail(w http.ResponseWriter, r *http.Request, f Failure, reqID string) {
	f.RequestID = reqID
	slog.Info("gateway error", "status", f.Status, "cause", f.Cause, "host", r.Host, "path", r.URL.Path, "component", f.Component, "request_id", reqID)
	f.write(w, r)
}

// upstreamError classifies what went wrong with the instance.
func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	route, _ := r.Context().Value(routeKey{}).(*Route)
	if route == nil {
		route = &Route{}
	}
	var f Failure
	var nerr net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		f = refused(route, false)
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		f = refused(route, true)
	case errors.As(err, &nerr) && nerr.Timeout(), errors.Is(err, context.DeadlineExceeded):
		f = timedOut(route)
	case errors.Is(err, context.Canceled):
		return // the client left
	default:
		f = refused(route, true)
		f.Message = "The instance could not be reached: " + err.Error()
	}
	p.fail(w, r, f, r.Header.Get("X-Request-Id"))
}
