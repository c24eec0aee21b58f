// Package serviceproxy gives a component port its stable inner address: a
// TCP listener that spreads connections over the component's ready
// instances, the embedded engine's equivalent of a Kubernetes Service.
package serviceproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// dialTimeout bounds the connect to one instance; a dead one costs at most
// this before the next is tried.
const dialTimeout = 2 * time.Second

// Proxy listens on one address and forwards each connection to one of its
// backends, round robin, skipping backends that refuse.
type Proxy struct {
	ln   net.Listener
	name string

	mu       sync.RWMutex
	backends []string
	next     atomic.Uint64

	// allow, when set, decides from the client's address whether a
	// connection is served: a team's inner address is for its own
	// instances.
	allow atomic.Pointer[func(net.IP) bool]

	conns sync.WaitGroup
	done  chan struct{}
	once  sync.Once

	active sync.Map // net.Conn -> struct{}; closed on Close
}

// Listen starts a proxy on addr (host:port) named for log lines.
func Listen(name, addr string) (*Proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("service %s: listen on %s: %w", name, addr, err)
	}
	p := &Proxy{ln: ln, name: name, done: make(chan struct{})}
	go p.serve()
	return p, nil
}

// Addr is the address the proxy listens on.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetBackends replaces the set of instance addresses; open connections to
// removed backends stay until they end, which is what draining means.
func (p *Proxy) SetBackends(addrs []string) {
	cp := append([]string(nil), addrs...)
	p.mu.Lock()
	p.backends = cp
	p.mu.Unlock()
}

// SetPolicy makes the proxy serve only clients for which allow is true;
// others are cut (with a reset) before any backend is dialled. Nil serves
// everyone.
func (p *Proxy) SetPolicy(allow func(remote net.IP) bool) {
	if allow == nil {
		p.allow.Store(nil)
		return
	}
	p.allow.Store(&allow)
}

// admits applies the policy to a new connection.
func (p *Proxy) admits(c net.Conn) bool {
	allow := p.allow.Load()
	if allow == nil {
		return true
	}
	addr, ok := c.RemoteAddr().(*net.TCPAddr)
	if ok && (*allow)(addr.IP) {
		return true
	}
	slog.Info("service connection refused: the client is not an instance of the owning team", "service", p.name, "client", c.RemoteAddr().String())
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	return false
}

// Backends returns the current backends.
func (p *Proxy) Backends() []string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return append([]string(nil), p.backends...)
}

// Close stops listening and cuts open connections.
func (p *Proxy) Close() error {
	var err error
	p.once.Do(func() {
		close(p.done)
		err = p.ln.Close()
		p.active.Range(func(k, _ any) bool {
			k.(net.Conn).Close()
			return true
		})
		p.conns.Wait()
	})
	return err
}

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			select {
			case <-p.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			slog.Warn("service accept", "service", p.name, "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		p.conns.Add(1)
		go func() {
			defer p.conns.Done()
			p.handle(c)
		}()
	}
}

// dial tries backends starting at the round-robin cursor until one accepts.
func (p *Proxy) dial() (net.Conn, error) {
	p.mu.RLock()
	backends := p.backends
	p.mu.RUnlock()
	if len(backends) == 0 {
		return nil, fmt.Errorf("no ready instance")
	}
	start := int(p.next.Add(1) - 1)
	var lastErr error
	for i := range backends {
		addr := backends[(start+i)%len(backends)]
		ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		cancel()
		if err == nil {
			return c, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("every instance refused: %w", lastErr)
}

func (p *Proxy) handle(client net.Conn) {
	p.active.Store(client, struct{}{})
	defer p.active.Delete(client)
	defer client.Close()
	if !p.admits(client) {
		return
	}
	upstream, err := p.dial()
	if err != nil {
		slog.Debug("service connection dropped", "service", p.name, "err", err)
		return
	}
	p.active.Store(upstream, struct{}{})
	defer p.active.Delete(upstream)
	defer upstream.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Half-close so the peer sees EOF but can still answer.
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(upstream, client)
	go pipe(client, upstream)
	<-done
	<-done
}
