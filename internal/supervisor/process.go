// Package supervisor runs a daemon berth depends on (containerd,
// buildkitd) as a child process: it ends one left over by a berth that was
// killed, starts the child with its output in a log file, waits until it
// answers, restarts it with back-off whenever it dies and stops it with a
// grace period. A crash of such a daemon must fail what depended on it,
// not berth.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Process is a child process under supervision. The zero Process is ready
// to Start; a stopped one can be started again.
type Process struct {
	mu       sync.Mutex
	cfg      Config // of the current Start; fixed until Stop
	proc     *os.Process
	exited   chan struct{} // closed when proc has been reaped
	stopping bool
	stopc    chan struct{} // closed by Stop to end the supervisor
	done     chan struct{} // closed when the supervisor has ended
	restarts int
}

// Pid is the current child's process id, 0 when none was started.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc == nil {
		return 0
	}
	return p.proc.Pid
}

// Restarts counts how often the supervisor restarted a dead child.
func (p *Process) Restarts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.restarts
}

// Start ends a child left over from a previous berth on the same pid
// file, starts the child and waits until it is ready. From then on a
// supervisor restarts it whenever it dies, until Stop.
func (p *Process) Start(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	// OwnArg guards the leftover's kill: empty, it would match any process.
	if cfg.Binary == "" || cfg.LogPath == "" || cfg.PidPath == "" || cfg.OwnArg == "" || cfg.Ready == nil {
		return fmt.Errorf("%s daemon: Binary, LogPath, PidPath, OwnArg and Ready are required", cfg.Name)
	}
	p.mu.Lock()
	if p.stopc != nil {
		p.mu.Unlock()
		return fmt.Errorf("%s daemon: already started", cfg.Name)
	}
	p.cfg = cfg
	p.stopc = make(chan struct{})
	p.done = make(chan struct{})
	p.mu.Unlock()

	p.endLeftover()
	if err := p.spawnAndWait(ctx); err != nil {
		close(p.done)
		p.mu.Lock()
		p.stopc = nil
		p.mu.Unlock()
		return err
	}
	go p.supervise()
	return nil
}

// spawnAndWait starts one child process and waits until it is ready. A
// child that does not get ready is killed, and the error ends with what it
// wrote to its log: that is where the reason is.
func (p *Process) spawnAndWait(ctx context.Context) error {
	c := p.cfg
	logf, err := os.OpenFile(c.LogPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("%s daemon: open log: %w", c.Name, err)
	}
	defer logf.Close() // the child has its own descriptor
	logStart, _ := logf.Seek(0, io.SeekEnd)

	cmd := exec.Command(c.Binary, c.Args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = c.Env
	if cmd.Env == nil {
		cmd.Env = withSystemPath(os.Environ())
	}
	// Its own process group: a Ctrl-C on berth's terminal must not reach
	// the child (berth stops it in order), and with KillGroup the group
	// lets berth end the descendants of a child that died.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s daemon: start %s: %w", c.Name, c.Binary, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	p.mu.Lock()
	p.proc, p.exited = cmd.Process, exited
	p.mu.Unlock()
	_ = os.WriteFile(c.PidPath, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)

	if err := p.waitReady(ctx, exited); err != nil {
		select {
		case <-exited:
			err = fmt.Errorf("%w (%s exited: %v)", err, c.Name, waitErr)
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
		p.endRemains(cmd.Process.Pid)
		return fmt.Errorf("%s daemon: %w; last lines of %s:\n%s", c.Name, err, c.LogPath, lastLines(c.LogPath, logStart, 20))
	}
	c.Logger.Info(c.Name+" running", "pid", cmd.Process.Pid, "address", c.Address)
	return nil
}

// waitReady polls Ready until the child answers, the child dies or
// StartTimeout passes.
func (p *Process) waitReady(ctx context.Context, exited <-chan struct{}) error {
	c := p.cfg
	ctx, cancel := context.WithTimeout(ctx, c.StartTimeout)
	defer cancel()
	var last error = errors.New("no answer yet")
	for {
		select {
		case <-exited:
			return fmt.Errorf("%s exited before it answered on %s", c.Name, c.Address)
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer on %s within %s: %w", c.Name, c.Address, c.StartTimeout, last)
		case <-time.After(100 * time.Millisecond):
		}
		if err := c.Ready(ctx); err != nil {
			last = err
			continue
		}
		return nil
	}
}

// Stop ends the child: SIGTERM, up to grace (default 10s) for it to exit,
// then SIGKILL; then what it left is ended (KillGroup, Cleanup).
func (p *Process) Stop(grace time.Duration) error {
	if grace <= 0 {
		grace = 10 * time.Second
	}
	p.mu.Lock()
	if p.stopc == nil || p.stopping {
		p.mu.Unlock()
		return nil
	}
	p.stopping = true
	close(p.stopc)
	p.mu.Unlock()
	<-p.done

	p.mu.Lock()
	c := p.cfg
	proc, exited := p.proc, p.exited
	if proc == nil {
		p.stopc, p.stopping = nil, false
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()
	select {
	case <-exited:
	default:
		_ = proc.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(grace):
			c.Logger.Warn(c.Name+" did not stop in time; killing it", "pid", proc.Pid, "grace", grace)
			_ = proc.Kill()
			<-exited
		}
	}
	p.endRemains(proc.Pid)
	_ = os.Remove(c.PidPath)
	p.mu.Lock()
	// Ready for another Start.
	p.proc, p.stopc, p.stopping = nil, nil, false
	p.mu.Unlock()
	c.Logger.Info(c.Name+" stopped", "pid", proc.Pid)
	return nil
}
