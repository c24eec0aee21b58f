package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

var webRef = ComponentRef{Team: "acme", App: "shop", Component: "web"}

func TestComponentLogsRequest(t *testing.T) {
	var gotQuery, gotAccept, gotAuth string
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/teams/acme/apps/shop/components/web/logs" {
			t.Errorf("path %s", r.URL.Path)
		}
		gotQuery, gotAccept, gotAuth = r.URL.RawQuery, r.Header.Get("Accept"), r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "[web-1] started\n[web-2] started\n")
	}))
	rc, err := c.ComponentLogs(context.Background(), webRef, LogsOptions{Instance: "web-1", Previous: true, Tail: 20})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "[web-1] started\n[web-2] started\n" {
		t.Fatalf("body %q", b)
	}
	if gotQuery != "instance=web-1&previous=1&tail=20" || gotAccept != "text/plain" || gotAuth != "Bearer secret-token" {
		t.Fatalf("query %q, accept %q, auth %q", gotQuery, gotAccept, gotAuth)
	}

	// Defaults send no parameters: every line kept, every instance.
	if rc, err = c.ComponentLogs(context.Background(), webRef, LogsOptions{}); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if gotQuery != "" {
		t.Fatalf("default query %q", gotQuery)
	}
	if _, err := c.ComponentLogs(context.Background(), webRef, LogsOptions{Tail: -1}); err == nil {
		t.Fatal("negative tail accepted")
	}
}

func TestComponentLogsConflict(t *testing.T) {
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		io.WriteString(w, `{"error":{"code":"conflict","message":"component web has no instances; start it first"}}`)
	}))
	_, err := c.ComponentLogs(context.Background(), webRef, LogsOptions{})
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.Status != 409 || apiErr.Message != "component web has no instances; start it first" {
		t.Fatalf("error %#v", err)
	}
}

// TestComponentLogsFollow reads a stream that stays open and checks that
// cancelling the context ends it on both sides.
func TestComponentLogsFollow(t *testing.T) {
	serverDone := make(chan struct{})
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(serverDone)
		if r.URL.Query().Get("follow") != "1" {
			t.Errorf("follow not asked: %q", r.URL.RawQuery)
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "line 1\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	ctx, cancel := context.WithCancel(context.Background())
	rc, err := c.ComponentLogs(ctx, webRef, LogsOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	buf := make([]byte, 64)
	n, err := rc.Read(buf)
	if err != nil || string(buf[:n]) != "line 1\n" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	cancel()
	if _, err := io.ReadAll(rc); !errors.Is(err, context.Canceled) {
		t.Fatalf("read after cancel: %v", err)
	}
	select {
	case <-serverDone:
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not see the client go away")
	}
}

// fakeExec is a stand-in for the exec WebSocket endpoint: it records what
// the client sent and plays a script.
type fakeExec struct {
	t *testing.T

	mu      sync.Mutex
	query   url.Values
	auth    string
	resizes []TerminalSize
	stdin   bytes.Buffer

	// script runs once the connection is accepted.
	script func(f *fakeExec, ctx context.Context, conn *websocket.Conn)
}

func (f *fakeExec) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/teams/acme/apps/shop/components/web/instances/web-1/exec" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":{"code":"not_found","message":"instance \"web-9\" not found in component web"}}`)
		return
	}
	f.mu.Lock()
	f.query, f.auth = r.URL.Query(), r.Header.Get("Authorization")
	f.mu.Unlock()
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		f.t.Error(err)
		return
	}
	defer conn.CloseNow()
	f.script(f, r.Context(), conn)
}

// read takes one message from the client, recording stdin and resizes;
// it returns the stdin data of a binary message.
func (f *fakeExec) read(ctx context.Context, conn *websocket.Conn) ([]byte, error) {
	typ, b, err := conn.Read(ctx)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if typ == websocket.MessageBinary {
		f.stdin.Write(b)
		return b, nil
	}
	var m execMessage
	if err := json.Unmarshal(b, &m); err != nil || m.Type != "resize" {
		f.t.Errorf("client sent %s", b)
	}
	f.resizes = append(f.resizes, TerminalSize{m.Cols, m.Rows})
	return nil, nil
}

func finish(ctx context.Context, conn *websocket.Conn, msg string) {
	conn.Write(ctx, websocket.MessageText, []byte(msg))
	conn.Close(websocket.StatusNormalClosure, "")
}

func TestExecStreamsAndReturnsTheExitCode(t *testing.T) {
	f := &fakeExec{t: t, script: func(f *fakeExec, ctx context.Context, conn *websocket.Conn) {
		// An echoing shell: upper-cases its input until "exit 3".
		var line []byte
		for {
			b, err := f.read(ctx, conn)
			if err != nil {
				return
			}
			line = append(line, b...)
			for {
				i := bytes.IndexByte(line, '\n')
				if i < 0 {
					break
				}
				cmd := string(line[:i])
				line = line[i+1:]
				if cmd == "exit 3" {
					finish(ctx, conn, `{"type":"exit","code":3}`)
					return
				}
				conn.Write(ctx, websocket.MessageBinary, []byte(strings.ToUpper(cmd)+"\r\n"))
			}
		}
	}}
	c := newTestClient(t, f)
	resize := make(chan TerminalSize, 1)
	resize <- TerminalSize{Cols: 120, Rows: 40}
	var out bytes.Buffer
	code, err := c.Exec(context.Background(), webRef, "web-1", ExecOptions{
		Cmd: []string{"sh", "-c", "x y"}, TTY: true,
		Stdin:  strings.NewReader("echo hi\nexit 3\n"),
		Stdout: &out, Resize: resize,
	})
	if err != nil || code != 3 {
		t.Fatalf("code %d, err %v", code, err)
	}
	if out.String() != "ECHO HI\r\n" {
		t.Fatalf("output %q", out.String())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if got := f.query["cmd"]; strings.Join(got, "|") != "sh|-c|x y" {
		t.Errorf("cmd %q", got)
	}
	if f.query.Get("tty") != "1" || f.auth != "Bearer secret-token" {
		t.Errorf("tty %q, auth %q", f.query.Get("tty"), f.auth)
	}
	if f.stdin.String() != "echo hi\nexit 3\n" {
		t.Errorf("stdin %q", f.stdin.String())
	}
	// The resize is sent concurrently with stdin, so it may arrive after
	// the command ended; it is checked in TestExecSendsResizes.
}

func TestExecSendsResizes(t *testing.T) {
	got := make(chan TerminalSize, 2)
	f := &fakeExec{t: t, script: func(f *fakeExec, ctx context.Context, conn *websocket.Conn) {
		for len(got) < 2 {
			if _, err := f.read(ctx, conn); err != nil {
				return
			}
			f.mu.Lock()
			for len(got) < len(f.resizes) {
				got <- f.resizes[len(got)]
			}
			f.mu.Unlock()
		}
		finish(ctx, conn, `{"type":"exit"}`) // the server omits a 0 code
	}}
	c := newTestClient(t, f)
	resize := make(chan TerminalSize, 2)
	resize <- TerminalSize{Cols: 80, Rows: 24}
	resize <- TerminalSize{Cols: 100, Rows: 30}
	code, err := c.Exec(context.Background(), webRef, "web-1", ExecOptions{TTY: true, Resize: resize})
	if err != nil || code != 0 {
		t.Fatalf("code %d, err %v", code, err)
	}
	if a, b := <-got, <-got; a != (TerminalSize{80, 24}) || b != (TerminalSize{100, 30}) {
		t.Fatalf("resizes %v %v", a, b)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.query["cmd"]; ok || f.query.Get("tty") != "1" {
		t.Fatalf("query %v: an empty Cmd must leave the server's default", f.query)
	}
}

func TestExecWithoutTTY(t *testing.T) {
	f := &fakeExec{t: t, script: func(f *fakeExec, ctx context.Context, conn *websocket.Conn) {
		conn.Write(ctx, websocket.MessageBinary, []byte("out\n"))
		conn.Write(ctx, websocket.MessageText, []byte(`{"type":"later","x":1}`)) // unknown: skipped
		conn.Write(ctx, websocket.MessageBinary, []byte("err\n"))
		finish(ctx, conn, `{"type":"exit","code":1}`)
	}}
	c := newTestClient(t, f)
	var out bytes.Buffer
	code, err := c.Exec(context.Background(), webRef, "web-1", ExecOptions{Cmd: []string{"ls"}, Stdout: &out})
	if err != nil || code != 1 || out.String() != "out\nerr\n" {
		t.Fatalf("code %d, err %v, output %q", code, err, out.String())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.query.Get("tty") != "0" {
		t.Fatalf("tty %q", f.query.Get("tty"))
	}
}

func TestExecErrors(t *testing.T) {
	t.Run("refused before the upgrade", func(t *testing.T) {
		c := newTestClient(t, &fakeExec{t: t})
		_, err := c.Exec(context.Background(), webRef, "web-9", ExecOptions{})
		if !IsNotFound(err) || err.Error() != `instance "web-9" not found in component web` {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("error message", func(t *testing.T) {
		c := newTestClient(t, &fakeExec{t: t, script: func(f *fakeExec, ctx context.Context, conn *websocket.Conn) {
			finish(ctx, conn, `{"type":"error","message":"exec in web-1: container is not running"}`)
		}})
		code, err := c.Exec(context.Background(), webRef, "web-1", ExecOptions{})
		var execErr *ExecError
		if !errors.As(err, &execErr) || execErr.Message != "exec in web-1: container is not running" || code != -1 {
			t.Fatalf("code %d, error %#v", code, err)
		}
	})
	t.Run("closed without an exit status", func(t *testing.T) {
		c := newTestClient(t, &fakeExec{t: t, script: func(f *fakeExec, ctx context.Context, conn *websocket.Conn) {
			conn.Close(websocket.StatusInternalError, "boom")
		}})
		_, err := c.Exec(context.Background(), webRef, "web-1", ExecOptions{})
		if err == nil || !strings.Contains(err.Error(), "without the command's exit status") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("context ends", func(t *testing.T) {
		serverSaw := make(chan error, 1)
		c := newTestClient(t, &fakeExec{t: t, script: func(f *fakeExec, ctx context.Context, conn *websocket.Conn) {
			_, _, err := conn.Read(ctx) // the client never sends anything
			serverSaw <- err
		}})
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := c.Exec(ctx, webRef, "web-1", ExecOptions{})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error %v", err)
		}
		select {
		case err := <-serverSaw:
			if err == nil {
				t.Fatal("server read a message")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the connection stayed open")
		}
	})
	t.Run("output write fails", func(t *testing.T) {
		c := newTestClient(t, &fakeExec{t: t, script: func(f *fakeExec, ctx context.Context, conn *websocket.Conn) {
			conn.Write(ctx, websocket.MessageBinary, []byte("x"))
			conn.Read(ctx)
		}})
		_, err := c.Exec(context.Background(), webRef, "web-1", ExecOptions{Stdout: failWriter{}})
		if err == nil || !strings.Contains(err.Error(), "write output: broken pipe") {
			t.Fatalf("error %v", err)
		}
	})
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestExecOnce(t *testing.T) {
	var body map[string]any
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/teams/acme/apps/shop/components/web/instances/web-1/exec" {
			t.Errorf("%s %s", r.Method, r.URL.Path)
		}
		json.NewDecoder(r.Body).Decode(&body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"exit_code":2,"output":"no such file\n","truncated":false}`)
	}))
	res, err := c.ExecOnce(context.Background(), webRef, "web-1", []string{"ls", "/nope"}, "in")
	if err != nil || *res != (ExecResult{ExitCode: 2, Output: "no such file\n"}) {
		t.Fatalf("%+v %v", res, err)
	}
	if b, _ := json.Marshal(body); string(b) != `{"cmd":["ls","/nope"],"stdin":"in"}` {
		t.Fatalf("body %s", b)
	}
	if _, err := c.ExecOnce(context.Background(), webRef, "web-1", nil, ""); err == nil {
		t.Fatal("empty command accepted")
	}
}

func TestListInstances(t *testing.T) {
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/teams/acme/apps/shop/components/web/instances" {
			t.Errorf("path %s", r.URL.Path)
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"items":[{"id":"web-1","status":"running","version":2,"address":"10.213.0.5","restarts":0},`+
			`{"id":"web-2","status":"abnormal","reason":"CrashLoopBackOff","message":"exited with code 1","advice":"read the log","restarts":4}]}`)
	}))
	ins, err := c.ListInstances(context.Background(), webRef)
	if err != nil || len(ins) != 2 || ins[0].Address != "10.213.0.5" || ins[1].Restarts != 4 || ins[1].Advice != "read the log" {
		t.Fatalf("%+v %v", ins, err)
	}
}
