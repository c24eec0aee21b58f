package supervisor

import (
	"context"
	"time"
)

// supervise restarts the child whenever it dies, with exponential
// back-off (1s doubling to 30s, back to 1s after a minute of good health),
// until Stop.
func (p *Process) supervise() {
	defer close(p.done)
	// Stop resets the fields for the next Start once this has ended; the
	// goroutine that cancels a restart may outlive it.
	c, stopc := p.cfg, p.stopc
	backoff := time.Second
	for {
		p.mu.Lock()
		exited, proc := p.exited, p.proc
		p.mu.Unlock()
		started := time.Now()
		select {
		case <-stopc:
			return
		case <-exited:
		}
		if time.Since(started) > time.Minute {
			backoff = time.Second
		}
		p.endRemains(proc.Pid)
		for {
			p.mu.Lock()
			p.restarts++
			n := p.restarts
			p.mu.Unlock()
			c.Logger.Warn(c.Name+" exited unexpectedly; restarting", "pid", proc.Pid, "restart", n, "backoff", backoff, "log", c.LogPath)
			select {
			case <-stopc:
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 30*time.Second)
			// Stop must not wait out a restart that hangs until
			// StartTimeout.
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				select {
				case <-stopc:
					cancel()
				case <-ctx.Done():
				}
			}()
			err := p.spawnAndWait(ctx)
			cancel()
			if err == nil {
				c.Logger.Info(c.Name+" restarted", "restart", n)
				break
			}
			c.Logger.Error(c.Name+" restart failed", "restart", n, "err", err)
			select {
			case <-stopc:
				return
			default:
			}
		}
	}
}
