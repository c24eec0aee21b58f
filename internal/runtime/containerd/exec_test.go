package containerd

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	rt "github.com/berth-platform/berth/internal/runtime"
)

func execOpts(stdin io.Reader, stdout io.Writer, cmd ...string) rt.ExecOptions {
	return rt.ExecOptions{Cmd: cmd, Stdin: stdin, Stdout: stdout, Stderr: stdout}
}

// syncBuffer is a bytes.Buffer safe for the copier goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestExec(t *testing.T) {
	env := newEnv(t)
	ref := env.pullBusybox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env.run(t, ref, "box", "sleep", "300")

	t.Run("stdout, stderr, exit code", func(t *testing.T) {
		var out, errOut syncBuffer
		code, err := env.engine.Exec(ctx, "box", rt.ExecOptions{
			Cmd:    []string{"sh", "-c", "echo to-out; echo to-err >&2; exit 7"},
			Stdout: &out, Stderr: &errOut,
		})
		if err != nil {
			t.Fatal(err)
		}
		if code != 7 || out.String() != "to-out\n" || errOut.String() != "to-err\n" {
			t.Fatalf("code %d out %q err %q", code, out.String(), errOut.String())
		}
	})

	t.Run("stdin is closed at EOF", func(t *testing.T) {
		var out syncBuffer
		code, err := env.engine.Exec(ctx, "box", execOpts(strings.NewReader("line one\nline two\n"), &out, "cat"))
		if err != nil || code != 0 {
			t.Fatalf("cat: %d %v", code, err)
		}
		if out.String() != "line one\nline two\n" {
			t.Fatalf("cat echoed %q", out.String())
		}
	})

	t.Run("no tty", func(t *testing.T) {
		var out syncBuffer
		code, _ := env.engine.Exec(ctx, "box", execOpts(nil, &out, "tty"))
		if code == 0 || !strings.Contains(out.String(), "not a tty") {
			t.Fatalf("tty without TTY: %d %q", code, out.String())
		}
	})

	t.Run("tty with resize", func(t *testing.T) {
		var out syncBuffer
		resize := make(chan rt.TerminalSize, 1)
		resize <- rt.TerminalSize{Cols: 123, Rows: 45}
		code, err := env.engine.Exec(ctx, "box", rt.ExecOptions{
			Cmd: []string{"sh", "-c", "sleep 1; tty; stty size; echo TERM=$TERM"}, TTY: true, Stdout: &out, Resize: resize,
		})
		if err != nil || code != 0 {
			t.Fatalf("tty exec: %d %v (%q)", code, err, out.String())
		}
		got := strings.ReplaceAll(out.String(), "\r\n", "\n")
		if !strings.Contains(got, "/dev/pts/") || !strings.Contains(got, "45 123\n") || !strings.Contains(got, "TERM=xterm") {
			t.Fatalf("tty output %q", got)
		}
	})

	t.Run("interactive tty", func(t *testing.T) {
		// Like a person at a terminal: input arrives, and stdin stays open
		// until the session ends (EOF on a TTY hangs the shell up).
		var out syncBuffer
		pr, pw := io.Pipe()
		go func() { _, _ = io.WriteString(pw, "echo $((6*7))\nexit 4\n") }()
		defer pw.Close()
		code, err := env.engine.Exec(ctx, "box", rt.ExecOptions{
			Cmd: []string{"sh"}, TTY: true, Stdout: &out, Stdin: pr,
		})
		if err != nil || code != 4 || !strings.Contains(out.String(), "42") {
			t.Fatalf("interactive: %d %v %q", code, err, out.String())
		}
	})

	t.Run("missing executable", func(t *testing.T) {
		_, err := env.engine.Exec(ctx, "box", execOpts(nil, io.Discard, "no-such-cmd"))
		if !errors.Is(err, ErrExecutableNotFound) {
			t.Fatalf("want ErrExecutableNotFound, got %v", err)
		}
		t.Logf("error: %v", err)
	})

	t.Run("context cancel kills", func(t *testing.T) {
		cctx, ccancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer ccancel()
		start := time.Now()
		_, err := env.engine.Exec(cctx, "box", execOpts(nil, io.Discard, "sleep", "60"))
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 15*time.Second {
			t.Fatalf("cancel: %v after %s", err, time.Since(start))
		}
	})

	t.Run("not running", func(t *testing.T) {
		if err := env.engine.Stop(ctx, "box", 0); err != nil {
			t.Fatal(err)
		}
		_, err := env.engine.Exec(ctx, "box", execOpts(nil, io.Discard, "true"))
		if err == nil {
			t.Fatal("exec in a removed container succeeded")
		}
		env.run(t, ref, "done", "true")
		time.Sleep(500 * time.Millisecond)
		_, err = env.engine.Exec(ctx, "done", execOpts(nil, io.Discard, "true"))
		if !errors.Is(err, ErrNotRunning) {
			t.Fatalf("exec in exited container: %v", err)
		}
	})
}
