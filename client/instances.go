package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"

	"github.com/coder/websocket"
)

// LogsOptions choose the container output ComponentLogs reads.
type LogsOptions struct {
	// Instance reads one instance; "" reads all of them, interleaved line
	// by line, each line prefixed with "[instance-id] " when there are
	// several.
	Instance string
	// Follow keeps the stream open and sends new lines as they are written,
	// until the context ends or the reader is closed.
	Follow bool
	// Previous reads the last terminated container of the instance, e.g.
	// the one that crashed before a restart.
	Previous bool
	// Tail starts with the last Tail lines; 0 reads every line kept.
	Tail int
}

// ComponentLogs opens the output (stdout and stderr) of a component's
// containers as text. The caller must close the reader; with Follow it ends
// only when the context ends, the reader is closed or the server goes away.
// A component without instances, or a server without a runtime, answers an
// *Error with status 409.
func (c *Client) ComponentLogs(ctx context.Context, ref ComponentRef, opts LogsOptions) (io.ReadCloser, error) {
	if opts.Tail < 0 {
		return nil, fmt.Errorf("logs: tail must be 0 (every line) or more, got %d", opts.Tail)
	}
	q := url.Values{}
	if opts.Instance != "" {
		q.Set("instance", opts.Instance)
	}
	if opts.Follow {
		q.Set("follow", "1")
	}
	if opts.Previous {
		q.Set("previous", "1")
	}
	if opts.Tail > 0 {
		q.Set("tail", strconv.Itoa(opts.Tail))
	}
	req, err := c.newRequest(ctx, http.MethodGet, ref.path("logs"), q, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, decodeError(resp)
	}
	return resp.Body, nil
}

// TerminalSize is the size of a terminal in character cells.
type TerminalSize struct {
	Cols, Rows uint16
}

// ExecOptions describe a command Exec runs in an instance.
type ExecOptions struct {
	// Cmd is the command and its arguments; empty runs the server's
	// default, /bin/sh.
	Cmd []string
	// TTY gives the command a terminal. Send its size on Resize.
	TTY bool
	// Stdin is copied to the command's input; nil sends nothing. When it
	// ends, the command's stdin is closed ({"type":"stdin_eof"}), so a
	// command that reads its input to the end finishes.
	Stdin io.Reader
	// Stdout receives the command's output: the server sends stdout and
	// stderr as one stream. nil discards it.
	Stdout io.Writer
	// Resize carries the terminal size: send the initial size at once, then
	// each change. Only meaningful with TTY.
	Resize <-chan TerminalSize
}

// execMessage is a JSON control message of the exec WebSocket.
type execMessage struct {
	Type    string `json:"type"`
	Cols    uint16 `json:"cols,omitempty"`
	Rows    uint16 `json:"rows,omitempty"`
	Code    int    `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// ExecError is a command that the server could not run, or that failed
// without an exit code, in an Exec session that had started.
type ExecError struct {
	Instance string
	Message  string
}

func (e *ExecError) Error() string { return e.Message }

// Exec runs a command in an instance over a WebSocket, streaming Stdin to it
// and its output to Stdout, and returns its exit code once it has ended.
// Errors before the command starts (unknown instance, no runtime, refused
// token) come back as *Error, a failure reported by the server afterwards
// as *ExecError; the exit code is only meaningful when err is nil. If ctx
// ends first the connection is closed, which kills the command.
//
// Exec returns without waiting for a Read on Stdin to return: the goroutine
// that copies Stdin ends after its next Read.
func (c *Client) Exec(ctx context.Context, ref ComponentRef, instance string, opts ExecOptions) (exitCode int, err error) {
	if instance == "" {
		return -1, errors.New("exec: no instance given")
	}
	u, err := url.Parse(c.base + ref.path("instances", instance, "exec"))
	if err != nil {
		return -1, err
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	}
	q := url.Values{"cmd": opts.Cmd, "tty": {"0"}}
	if opts.TTY {
		q.Set("tty", "1")
	}
	u.RawQuery = q.Encode()
	header := http.Header{"User-Agent": {c.userAgent}}
	if c.token != "" {
		header.Set("Authorization", "Bearer "+c.token)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{HTTPClient: c.hc, HTTPHeader: header})
	if err != nil {
		if resp != nil && resp.StatusCode >= 400 {
			return -1, decodeError(resp)
		}
		return -1, fmt.Errorf("exec in %s: %w", instance, err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(16 << 20)

	// The pumps report the first error that must end the session; a failed
	// write because the session is over is not one.
	var (
		mu      sync.Mutex
		pumpErr error
	)
	fail := func(err error) {
		mu.Lock()
		if pumpErr == nil {
			pumpErr = err
		}
		mu.Unlock()
		cancel()
	}
	if opts.Stdin != nil {
		go func() {
			buf := make([]byte, 32<<10)
			for {
				n, rerr := opts.Stdin.Read(buf)
				if n > 0 {
					if err := conn.Write(ctx, websocket.MessageBinary, buf[:n]); err != nil {
						return
					}
				}
				if rerr != nil {
					if !errors.Is(rerr, io.EOF) && ctx.Err() == nil {
						fail(fmt.Errorf("exec: read stdin: %w", rerr))
						return
					}
					_ = conn.Write(ctx, websocket.MessageText, []byte(`{"type":"stdin_eof"}`))
					return
				}
			}
		}()
	}
	if opts.Resize != nil {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case size, ok := <-opts.Resize:
					if !ok {
						return
					}
					b, _ := json.Marshal(execMessage{Type: "resize", Cols: size.Cols, Rows: size.Rows})
					if err := conn.Write(ctx, websocket.MessageText, b); err != nil {
						return
					}
				}
			}
		}()
	}

	stdout := opts.Stdout
	if stdout == nil {
		stdout = io.Discard
	}
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			mu.Lock()
			perr := pumpErr
			mu.Unlock()
			if perr != nil {
				return -1, perr
			}
			if ctx.Err() != nil {
				return -1, ctx.Err() // the caller's context ended
			}
			if s := websocket.CloseStatus(err); s != -1 {
				return -1, fmt.Errorf("exec in %s: the server closed the session (%v) without the command's exit status", instance, s)
			}
			return -1, fmt.Errorf("exec in %s: connection lost: %w", instance, err)
		}
		if typ == websocket.MessageBinary {
			if _, err := stdout.Write(data); err != nil {
				return -1, fmt.Errorf("exec: write output: %w", err)
			}
			continue
		}
		var m execMessage
		if err := json.Unmarshal(data, &m); err != nil {
			return -1, fmt.Errorf("exec in %s: bad control message %q: %v", instance, data, err)
		}
		switch m.Type {
		case "exit":
			// The code is omitted when it is 0.
			conn.Close(websocket.StatusNormalClosure, "")
			return m.Code, nil
		case "error":
			conn.Close(websocket.StatusNormalClosure, "")
			msg := m.Message
			if msg == "" {
				msg = "exec in " + instance + " failed"
			}
			return -1, &ExecError{Instance: instance, Message: msg}
		}
		// Other types are skipped so the server can add some later.
	}
}

// ExecResult is the outcome of ExecOnce.
type ExecResult struct {
	ExitCode int `json:"exit_code"`
	// Output is stdout and stderr together, at most the first MiB.
	Output    string `json:"output"`
	Truncated bool   `json:"truncated"`
}

// ExecOnce runs a command in an instance without a terminal, feeds it
// stdin (then end of input) and returns its exit code and output once it
// has ended: the form for scripts. A command that cannot be started is an
// *Error with status 422.
func (c *Client) ExecOnce(ctx context.Context, ref ComponentRef, instance string, cmd []string, stdin string) (*ExecResult, error) {
	if len(cmd) == 0 {
		return nil, errors.New("exec: no command given")
	}
	body := struct {
		Cmd   []string `json:"cmd"`
		Stdin string   `json:"stdin,omitempty"`
	}{cmd, stdin}
	return send[ExecResult](ctx, c, http.MethodPost, ref.path("instances", instance, "exec"), body)
}
