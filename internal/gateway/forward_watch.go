package gateway

import (
	"sync"
	"sync/atomic"
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
// load). The goroutine runs only while requests are in flight.
type watchdog struct {
	mu      sync.Mutex
	conns   []*upConn // every open connection
	busy    atomic.Int64
	running atomic.Bool
}

func (d *watchdog) add(uc *upConn) {
	d.mu.Lock()
	uc.watchIdx = len(d.conns)
	d.conns = append(d.conns, uc)
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

// started counts a request in and makes sure the loop runs.
func (d *watchdog) started() {
	d.busy.Add(1)
	if !d.running.Load() && d.running.CompareAndSwap(false, true) {
		go d.run()
	}
}

func (d *watchdog) run() {
	t := time.NewTicker(watchTick)
	defer t.Stop()
	var batch []*upConn
	for range t.C {
		if d.busy.Load() == 0 {
			d.running.Store(false)
			// A request that started meanwhile saw the loop running.
			if d.busy.Load() == 0 || !d.running.CompareAndSwap(false, true) {
				return
			}
		}
		d.mu.Lock()
		batch = append(batch[:0], d.conns...)
		d.mu.Unlock()
		now := mono(time.Now())
		for _, uc := range batch {
			uc.check(now)
		}
		clear(batch)
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
	uc.wd.started()
}

// unwatch ends it, and reports whether the watchdog interrupted the
// connection (its deadlines are poisoned then).
func (uc *upConn) unwatch() (interrupted bool) {
	uc.mu.Lock()
	uc.busy, uc.ctx = false, nil
	interrupted = uc.interrupted
	uc.mu.Unlock()
	uc.wd.busy.Add(-1)
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
