package gateway

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Buffers are pooled across connections: an idle keep-alive connection
// holds none, so thousands of them cost no more than their sockets.
var (
	readerPool  sync.Pool
	writerPool  sync.Pool
	copyBufPool = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}
)

// upConn is one connection to an instance.
type upConn struct {
	conn      net.Conn
	host      *hostPool
	wd        *watchdog
	br        *bufio.Reader // held while in use
	bw        *bufio.Writer
	reused    bool // it served a request before
	idleSince time.Time
	closed    bool
	heads     headCache
	peek      peeker // alive's

	// The watchdog's view (forward_watch.go).
	watchIdx     int
	headDeadline atomic.Int64
	mu           sync.Mutex
	busy         bool
	ctx          interface{ Err() error }
	interrupted  bool
}

// headCache remembers the header lines an instance sent last, by
// position: an instance answers with the same names in the same order
// (and often the same values), so the next head skips canonicalizing
// names and allocating values it has seen.
type headCache struct {
	raw, key, val [16]string // name as sent, canonical name, value
	lines         int        // header lines in the last head
}

func (uc *upConn) take() {
	if v := readerPool.Get(); v != nil {
		uc.br = v.(*bufio.Reader)
		uc.br.Reset(uc.conn)
	} else {
		uc.br = bufio.NewReaderSize(uc.conn, headBufSize)
	}
	if v := writerPool.Get(); v != nil {
		uc.bw = v.(*bufio.Writer)
		uc.bw.Reset(uc.conn)
	} else {
		uc.bw = bufio.NewWriterSize(uc.conn, headBufSize)
	}
}

func (uc *upConn) release() {
	if uc.br != nil {
		uc.br.Reset(nil)
		readerPool.Put(uc.br)
		uc.br = nil
	}
	if uc.bw != nil {
		uc.bw.Reset(nil)
		writerPool.Put(uc.bw)
		uc.bw = nil
	}
}

// close ends a connection taken from the pool; it may be called twice.
func (uc *upConn) close() {
	if uc.closed {
		return
	}
	uc.shut()
	uc.release()
	uc.host.mu.Lock()
	uc.host.open--
	uc.host.mu.Unlock()
}

// shut closes the socket and stops watching it; the caller counts it out
// of its hostPool.
func (uc *upConn) shut() {
	uc.closed = true
	uc.conn.Close()
	uc.wd.remove(uc)
}

// upstreamPool keeps idle keep-alive connections per instance address.
type upstreamPool struct {
	maxIdle     int
	idleTimeout time.Duration
	hosts       sync.Map // address -> *hostPool
	sweeping    atomic.Bool
	closed      atomic.Bool
	mu          sync.Mutex // guards timer
	timer       *time.Timer
	watch       watchdog
}

// hostPool is one address's connections: a LIFO of idle ones, so the
// busiest stay warm and the rest age out.
type hostPool struct {
	addr string
	mu   sync.Mutex
	idle []*upConn
	open int  // idle and in use
	dead bool // dropped from the map; connections are made on a new one
}

func newUpstreamPool(maxIdle int, idleTimeout time.Duration) *upstreamPool {
	if maxIdle <= 0 {
		maxIdle = 128
	}
	if idleTimeout <= 0 {
		idleTimeout = 30 * time.Second
	}
	return &upstreamPool{maxIdle: maxIdle, idleTimeout: idleTimeout}
}

func (p *upstreamPool) host(addr string) *hostPool {
	if v, ok := p.hosts.Load(addr); ok {
		return v.(*hostPool)
	}
	v, _ := p.hosts.LoadOrStore(addr, &hostPool{addr: addr})
	return v.(*hostPool)
}

// get returns an idle connection to addr, or a new one when fresh is set
// or none is left. Every idle connection is peeked at before it is reused:
// one the instance closed would fail the request, and one that received
// bytes nobody asked for (a late second answer, a body after a HEAD
// answer) would hand them to the next client as its answer.
func (p *upstreamPool) get(ctx context.Context, addr string, connect time.Duration, now time.Time, fresh bool) (*upConn, error) {
	hp := p.host(addr)
	for !fresh {
		hp.mu.Lock()
		n := len(hp.idle)
		if n == 0 {
			hp.mu.Unlock()
			break
		}
		uc := hp.idle[n-1]
		hp.idle[n-1] = nil
		hp.idle = hp.idle[:n-1]
		hp.mu.Unlock()
		if now.Sub(uc.idleSince) >= p.idleTimeout {
			uc.close()
			continue
		}
		if !uc.alive() {
			uc.close()
			continue
		}
		uc.take()
		return uc, nil
	}
	return p.dial(ctx, hp, connect)
}

func (p *upstreamPool) dial(ctx context.Context, hp *hostPool, connect time.Duration) (*upConn, error) {
	d := net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", hp.addr)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			// Nothing listens there any more: the idle connections to it
			// are dead too.
			p.drain(hp)
		}
		return nil, err
	}
	for {
		hp.mu.Lock()
		if !hp.dead {
			hp.open++
			hp.mu.Unlock()
			break
		}
		hp.mu.Unlock()
		hp = p.host(hp.addr)
	}
	uc := &upConn{conn: conn, host: hp, wd: &p.watch}
	p.watch.add(uc)
	uc.take()
	return uc, nil
}

// put keeps a connection whose exchange ended cleanly.
func (p *upstreamPool) put(uc *upConn, now time.Time) {
	uc.release()
	uc.reused = true
	uc.idleSince = now
	hp := uc.host
	hp.mu.Lock()
	if p.closed.Load() || len(hp.idle) >= p.maxIdle {
		hp.open--
		hp.mu.Unlock()
		uc.shut()
		return
	}
	hp.idle = append(hp.idle, uc)
	hp.mu.Unlock()
	if !p.sweeping.Load() && p.sweeping.CompareAndSwap(false, true) {
		p.scheduleSweep()
	}
}

func (p *upstreamPool) drain(hp *hostPool) {
	hp.mu.Lock()
	idle := hp.idle
	hp.idle = nil
	hp.open -= len(idle)
	hp.mu.Unlock()
	for _, uc := range idle {
		uc.shut()
	}
}

func (p *upstreamPool) scheduleSweep() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return
	}
	p.timer = time.AfterFunc(max(p.idleTimeout/2, 100*time.Millisecond), p.sweep)
}

// sweep closes connections idle too long and forgets addresses with no
// connection left (instances come and go; their addresses should not
// pile up). It reschedules itself while idle connections remain, so an
// idle proxy has no timer running.
func (p *upstreamPool) sweep() {
	p.sweeping.Store(false)
	now := time.Now()
	remaining := false
	p.hosts.Range(func(k, v any) bool {
		hp := v.(*hostPool)
		hp.mu.Lock()
		keep := hp.idle[:0]
		var expired []*upConn
		for _, uc := range hp.idle {
			if now.Sub(uc.idleSince) >= p.idleTimeout {
				expired = append(expired, uc)
			} else {
				keep = append(keep, uc)
			}
		}
		clear(hp.idle[len(keep):])
		hp.idle = keep
		hp.open -= len(expired)
		if hp.open == 0 {
			hp.dead = true
			p.hosts.Delete(k)
		}
		if len(keep) > 0 {
			remaining = true
		}
		hp.mu.Unlock()
		for _, uc := range expired {
			uc.shut()
		}
		return true
	})
	if remaining && p.sweeping.CompareAndSwap(false, true) {
		p.scheduleSweep()
	}
}

// close closes every idle connection; those in use are closed when their
// request ends.
func (p *upstreamPool) close() {
	p.closed.Store(true)
	p.mu.Lock()
	if p.timer != nil {
		p.timer.Stop()
	}
	p.mu.Unlock()
	p.hosts.Range(func(k, v any) bool {
		p.drain(v.(*hostPool))
		return true
	})
}
