package containerd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"

	rt "github.com/berth-platform/berth/internal/runtime"
)

// Exec runs opts.Cmd in a running container with the container's process
// settings (user, environment, working directory, capabilities) and returns
// its exit code. With opts.TTY the process gets a terminal (stdout and
// stderr are then one stream on opts.Stdout) and opts.Resize changes its
// size. When opts.Stdin ends, the process's stdin is closed, so commands
// like `cat` finish. If ctx ends first the process is killed.
func (e *Engine) Exec(ctx context.Context, id string, opts rt.ExecOptions) (int, error) {
	if len(opts.Cmd) == 0 {
		return -1, errors.New("exec: empty command")
	}
	ctx = e.ctx(ctx)
	container, err := e.client.LoadContainer(ctx, id)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	task, err := container.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return -1, fmt.Errorf("exec in %s: %w", id, ErrNotRunning)
	}
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	if st, err := task.Status(ctx); err != nil || st.Status != client.Running {
		return -1, fmt.Errorf("exec in %s: %w", id, ErrNotRunning)
	}
	spec, err := container.Spec(ctx)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: spec: %w", id, err)
	}
	pspec := *spec.Process
	pspec.Args = append([]string(nil), opts.Cmd...)
	pspec.Terminal = opts.TTY
	pspec.ConsoleSize = nil
	if opts.TTY && !hasEnv(pspec.Env, "TERM") {
		pspec.Env = append(append([]string(nil), pspec.Env...), "TERM=xterm")
	}

	stdout, stderr := opts.Stdout, opts.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	// The process handle exists only after task.Exec, but the stdin copy
	// starts inside it; the closer waits for the handle.
	var stdin io.Reader
	stdinCloser := &stdinCloser{ready: make(chan struct{})}
	defer stdinCloser.abandon()
	if opts.Stdin != nil {
		stdinCloser.r = opts.Stdin
		stdin = stdinCloser
	}
	cioOpts := []cio.Opt{cio.WithStreams(stdin, stdout, stderr), cio.WithFIFODir(e.fifoDir)}
	if opts.TTY {
		cioOpts = append(cioOpts, cio.WithTerminal)
	}
	execID := "exec-" + randomHex(8)
	process, err := task.Exec(ctx, execID, &pspec, cio.NewCreator(cioOpts...))
	if err != nil {
		return -1, execError(id, err)
	}
	cleanupCtx := context.WithoutCancel(ctx)
	defer func() {
		if _, err := process.Delete(cleanupCtx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			e.log.Warn("delete exec process", "id", id, "exec", execID, "err", err)
		}
	}()
	statusC, err := process.Wait(cleanupCtx)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: wait: %w", id, err)
	}
	if err := process.Start(ctx); err != nil {
		return -1, execError(id, err)
	}
	stdinCloser.start(ctx, process)

	if opts.TTY && opts.Resize != nil {
		resizeCtx, stop := context.WithCancel(ctx)
		defer stop()
		go func() {
			for {
				select {
				case <-resizeCtx.Done():
					return
				case size, ok := <-opts.Resize:
					if !ok {
						return
					}
					if err := process.Resize(resizeCtx, uint32(size.Cols), uint32(size.Rows)); err != nil && resizeCtx.Err() == nil {
						e.log.Debug("exec resize", "id", id, "err", err)
					}
				}
			}
		}()
	}

	var status client.ExitStatus
	select {
	case status = <-statusC:
	case <-ctx.Done():
		_ = process.Kill(cleanupCtx, syscall.SIGKILL)
		select {
		case <-statusC:
		case <-time.After(10 * time.Second):
		}
		return -1, fmt.Errorf("exec in %s: %w", id, ctx.Err())
	}
	// Let the output copiers finish before returning.
	process.IO().Wait()
	code, _, err := status.Result()
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	return int(code), nil
}

func execError(id string, err error) error {
	ce := createError(id, ReasonRunError, err).(*CreateContainerError)
	if ce.Kind != nil {
		return fmt.Errorf("exec in %s: %w: %w", id, ce.Kind, err)
	}
	return fmt.Errorf("exec in %s: %w", id, err)
}

// stdinCloser passes stdin through and closes the process's stdin at EOF:
// closing our end of the FIFO alone does not end the process's input.
type stdinCloser struct {
	r         io.Reader
	ready     chan struct{}
	readyOnce sync.Once
	once      sync.Once
	ctx       context.Context
	process   client.Process // nil if the process never started
}

func (s *stdinCloser) start(ctx context.Context, p client.Process) {
	s.readyOnce.Do(func() {
		s.ctx, s.process = context.WithoutCancel(ctx), p
		close(s.ready)
	})
}

// abandon releases a waiting closer when the process never started.
func (s *stdinCloser) abandon() { s.readyOnce.Do(func() { close(s.ready) }) }

func (s *stdinCloser) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err == io.EOF {
		s.once.Do(func() {
			go func() {
				<-s.ready
				if s.process != nil {
					_ = s.process.CloseIO(s.ctx, client.WithStdinCloser)
				}
			}()
		})
	}
	return n, err
}

func hasEnv(env []string, name string) bool {
	for _, kv := range env {
		if len(kv) > len(name) && kv[:len(name)+1] == name+"=" {
			return true
		}
	}
	return false
}

func randomHex(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}
