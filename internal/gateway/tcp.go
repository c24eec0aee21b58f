package gateway

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// TCPRoute publishes a component port on a gateway port.
type TCPRoute struct {
	Port      int    // gateway port
	Component string // team/alias
	Target    int    // the component's port
	Upstreams func() []string
}

// tcpListeners holds one listener per gateway port.
type tcpListeners struct {
	host     string
	observer func(*AccessRecord)
	mu       sync.Mutex
	byPort   map[int]*tcpListener
}

type tcpListener struct {
	ln    net.Listener
	route atomic.Pointer[TCPRoute]
	next  atomic.Uint64
	conns sync.WaitGroup
}

// set opens listeners for new routes, points existing ones at the new
// route, and closes those no route names. Closing a listener leaves its
// open connections alone: they end when their client or instance does.
func (t *tcpListeners) set(routes []TCPRoute) map[int]error {
	t.mu.Lock()
	defer t.mu.Unlock()
	errs := map[int]error{}
	want := map[int]bool{}
	for i := range routes {
		r := routes[i]
		want[r.Port] = true
		if l, ok := t.byPort[r.Port]; ok {
			l.route.Store(&r)
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(t.host, strconv.Itoa(r.Port)))
		if err != nil {
			errs[r.Port] = fmt.Errorf("listen on gateway port %d for %s: %w", r.Port, r.Component, err)
			continue
		}
		l := &tcpListener{ln: ln}
		l.route.Store(&r)
		t.byPort[r.Port] = l
		go t.serve(l)
	}
	for port, l := range t.byPort {
		if !want[port] {
			l.ln.Close()
			delete(t.byPort, port)
		}
	}
	return errs
}

// addresses returns the listening address of every gateway port.
func (t *tcpListeners) addresses() map[int]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := map[int]string{}
	for p, l := range t.byPort {
		m[p] = l.ln.Addr().String()
	}
	return m
}

func (t *tcpListeners) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for port, l := range t.byPort {
		l.ln.Close()
		delete(t.byPort, port)
	}
}

func (t *tcpListeners) serve(l *tcpListener) {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				slog.Warn("gateway tcp accept", "addr", l.ln.Addr().String(), "err", err)
			}
			return
		}
		go t.handle(l, c)
	}
}

func (t *tcpListeners) handle(l *tcpListener, client net.Conn) {
	defer client.Close()
	route := l.route.Load()
	start := time.Now()
	rec := &AccessRecord{Time: start, Remote: client.RemoteAddr().String(), Proto: "tcp",
		Host: l.ln.Addr().String(), Component: route.Component, TCPPort: route.Port}
	upstream, err := l.dial(route)
	if err != nil {
		rec.Cause, rec.Status = err.Error(), 0
		rec.Duration = time.Since(start)
		slog.Info("gateway tcp error", "port", route.Port, "component", route.Component, "cause", rec.Cause)
		t.observer(rec)
		return
	}
	defer upstream.Close()
	rec.Upstream = upstream.RemoteAddr().String()
	done := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(upstream, client)
		closeWrite(upstream)
		done <- n
	}()
	out, _ := io.Copy(client, upstream)
	closeWrite(client)
	rec.BytesIn, rec.BytesOut = <-done, out
	rec.Duration = time.Since(start)
	t.observer(rec)
}

// dial connects to a ready instance, trying the next one when an instance
// refuses, so a change of the instance set loses no connection.
func (l *tcpListener) dial(route *TCPRoute) (net.Conn, error) {
	ups := route.Upstreams()
	if len(ups) == 0 {
		return nil, errors.New(CauseNoReadyInstance)
	}
	first := int(l.next.Add(1))
	var last error
	for i := range ups {
		c, err := net.DialTimeout("tcp", ups[(first+i)%len(ups)], 5*time.Second)
		if err == nil {
			return c, nil
		}
		last = err
	}
	var nerr net.Error
	if errors.As(last, &nerr) && nerr.Timeout() {
		return nil, errors.New(CauseTimeout)
	}
	return nil, errors.New(CauseRefused)
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
		return
	}
	c.Close()
}
