package gateway

import (
	"sync"
	"time"
)

// watchTick is how often the watchdog looks: the precision of response
// head timeouts and of noticing a client that left.
const watchTick = 25 * time.Millisecond

// monoBase anchors the monotonic nanoseconds deadlines are kept in.
var monoBase = time.Now()

func mono(t time.Time) int64 { return int64(t.Sub(monoBase)) }

// watchdog enforces the response head timeout, and stops instance requests
// whose client has left, for every connection in use: one goroutine looks
// at them every tick. Per request that costs two uncontended locks, where
// a read deadline and a context callback cost a timer update, a callback
// registration and its removal (about 5% of the gateway's CPU at full
// load). The goroutine runs only while connections are open.
type watchdog struct {
	mu      sync.Mutex
	conns   []*upConn
	running bool
	batch   []*upConn // the run loop's copy
}

func (d *watchdog) add(uc *upConn) {
	d.mu.Lock()
	uc.watchIdx = len(d.conns)
	d.conns = append(d.conns, uc)
	if !d.running {
		d.running = true
		go d.run()
	}
	d.mu.Unlock()
}

func (d *watchdog) remove(uc *upConn) {
	d.mu.Lock()
	if i := uc.watchIdx; i >= 0 {
		last := len(d.conns) - 1
		d.conns[i] = d.conns[last]
		d.conns[i].watchIdx = i
		d.conns[last] = nil
		d.conns = d.conns[:last]
		uc.watchIdx = -1
	}
	d.mu.Unlock()
}

func (d *watchdog) run() {
	t := time.NewTicker(watchTick)
	defer t.Stop()
	for range t.C {
		d.mu.Lock()
		if len(d.conns) == 0 {
			d.running = false
			d.batch = nil
			d.mu.Unlock()
			return
		}
		batch := append(d.batch[:0], d.conns...)
		d.mu.Unlock()
		now := mono(time.Now())
		for _, uc := range batch {
			uc.check(now)
		}
		clear(batch)
		d.batch = batch
	}
}

// watch starts watching a request on uc; headDeadline (monotonic, see
// mono) is when the response head is late, 0 when the wait has not started
// (the body is still going up).
func (uc *upConn) watch(r interface{ Err() error }, headDeadline int64) {
	uc.mu.Lock()
	uc.busy, uc.ctx, uc.interrupted = true, r, false
	uc.headDeadline.Store(headDeadline)
	uc.mu.Unlock()
}

// unwatch ends it, and reports whether the watchdog interrupted the
// connection (its deadlines are poisoned then).
func (uc *upConn) unwatch() (interrupted bool) {
	uc.mu.Lock()
	uc.busy, uc.ctx = false, nil
	interrupted = uc.interrupted
	uc.mu.Unlock()
	return interrupted
}

// headArrived stops the head timeout; a body may take as long as it takes.
func (uc *upConn) headArrived() { uc.headDeadline.Store(-1) }

// startHeadWait starts the head timeout once the request body is sent,
// unless the head came first.
func (uc *upConn) startHeadWait(deadline int64) { uc.headDeadline.CompareAndSwap(0, deadline) }

func (uc *upConn) check(now int64) {
	uc.mu.Lock()
	if uc.busy && !uc.interrupted {
		d := uc.headDeadline.Load()
		if d > 0 && now >= d || uc.ctx.Err() != nil {
			uc.interrupted = true
			// Whatever waits on the connection returns at once: a
			// timeout error, or the client's context is done.
			_ = uc.conn.SetDeadline(aLongTimeAgo)
		}
	}
	uc.mu.Unlock()
}
