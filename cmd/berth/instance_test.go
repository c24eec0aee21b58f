package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/berth-platform/berth/client"
)

const webPath = "/api/v1/teams/acme/apps/shop/components/web"

// fakeInstances adds the instance routes of component web to a fakeAPI:
// the instance list, container logs and a scripted exec WebSocket.
type fakeInstances struct {
	t *testing.T

	mu        sync.Mutex
	instances []map[string]any
	logQuery  url.Values
	execs     []*execSession
	// term is the terminal of the CLI under test, which the shell script
	// resizes.
	term *fakeTerminal
}

// execSession is what the client of one exec connection sent.
type execSession struct {
	instance string
	query    url.Values
	stdin    bytes.Buffer
	resizes  []client.TerminalSize
}

func newFakeInstances(api *fakeAPI) *fakeInstances {
	f := &fakeInstances{t: api.t, instances: []map[string]any{
		{"id": "web-2", "status": "abnormal", "reason": "CrashLoopBackOff", "message": "exited with code 1\nlast log lines:\nfatal: no config\n",
			"advice": "read its output with \"berth logs web --instance web-2 --previous\"", "restarts": 4, "version": 2},
		{"id": "web-1", "status": "running", "reason": "Running", "message": "ready", "version": 2,
			"address": "10.213.0.7", "restarts": 0},
	}}
	api.mux.HandleFunc("GET "+webPath+"/instances", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		writeJSONTo(w, 200, map[string]any{"items": f.instances})
	})
	api.mux.HandleFunc("GET "+webPath+"/logs", f.serveLogs)
	api.mux.HandleFunc("GET "+webPath+"/instances/{instance}/exec", f.serveExec)
	return f
}

func (f *fakeInstances) serveLogs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.mu.Lock()
	f.logQuery = q
	none := len(f.instances) == 0
	f.mu.Unlock()
	if none {
		apiError(w, 409, "conflict", "component web has no instances; start it first")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if q.Get("instance") != "" {
		fmt.Fprintf(w, "%s: listening on :80\n", q.Get("instance"))
		return
	}
	io.WriteString(w, "[web-2] starting\n[web-1] listening on :80\n[web-2] fatal: no config\n")
	if q.Get("follow") == "1" {
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}
}

// serveExec plays a command by its first word: "exit" ends with the code
// given, "cat" echoes its input until a line "EOF", "fail" is a runtime
// error, and /bin/sh is an interactive shell on a terminal.
func (f *fakeInstances) serveExec(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("instance")
	if id != "web-1" && id != "web-2" {
		apiError(w, 404, "not_found", fmt.Sprintf("instance %q not found in component web", id))
		return
	}
	s := &execSession{instance: id, query: r.URL.Query()}
	f.mu.Lock()
	f.execs = append(f.execs, s)
	f.mu.Unlock()
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		f.t.Error(err)
		return
	}
	defer conn.CloseNow()
	ctx := r.Context()
	finish := func(msg string) {
		conn.Write(ctx, websocket.MessageText, []byte(msg))
		conn.Close(websocket.StatusNormalClosure, "")
	}
	// read takes one message, recording it; false when the client left.
	read := func() bool {
		typ, b, err := conn.Read(ctx)
		if err != nil {
			return false
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if typ == websocket.MessageBinary {
			s.stdin.Write(b)
			return true
		}
		var m struct {
			Type       string
			Cols, Rows uint16
		}
		if json.Unmarshal(b, &m) != nil || (m.Type != "resize" && m.Type != "stdin_eof") {
			f.t.Errorf("client sent %s", b)
		}
		if m.Type == "resize" {
			s.resizes = append(s.resizes, client.TerminalSize{Cols: m.Cols, Rows: m.Rows})
		}
		return true
	}
	snapshot := func() (stdin string, resizes int) {
		f.mu.Lock()
		defer f.mu.Unlock()
		return s.stdin.String(), len(s.resizes)
	}

	cmd := s.query["cmd"]
	switch cmd[0] {
	case "exit":
		conn.Write(ctx, websocket.MessageBinary, []byte("bye\n"))
		finish(`{"type":"exit","code":` + cmd[1] + `}`)
	case "fail":
		finish(`{"type":"error","message":"exec in ` + id + `: container is not running"}`)
	case "cat":
		sent := 0
		for read() {
			in, _ := snapshot()
			conn.Write(ctx, websocket.MessageBinary, []byte(in[sent:]))
			sent = len(in)
			if strings.HasSuffix(in, "EOF\n") {
				finish(`{"type":"exit"}`) // the server omits a 0 code
				return
			}
		}
	case "/bin/sh":
		// Wait for the initial size, change the window, wait for the new
		// size and for "exit 5" typed on the terminal.
		resized := false
		for read() {
			in, n := snapshot()
			if n >= 1 && !resized {
				f.term.resize(client.TerminalSize{Cols: 132, Rows: 43})
				resized = true
			}
			if n >= 2 && strings.Contains(in, "exit 5\r") {
				if !f.term.isRaw() {
					f.t.Error("the terminal is not in raw mode during the session")
				}
				conn.Write(ctx, websocket.MessageBinary, []byte("$ exit 5\r\n"))
				finish(`{"type":"exit","code":5}`)
				return
			}
		}
	}
}

func (f *fakeInstances) lastExec(t *testing.T) *execSession {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.execs) == 0 {
		t.Fatal("no exec session")
	}
	return f.execs[len(f.execs)-1]
}

// fakeTerminal records what exec does to the local terminal.
type fakeTerminal struct {
	mu            sync.Mutex
	size          client.TerminalSize
	raw, restored bool
	resized       chan struct{}
}

func newFakeTerminal() *fakeTerminal {
	return &fakeTerminal{size: client.TerminalSize{Cols: 80, Rows: 24}, resized: make(chan struct{}, 1)}
}

func (t *fakeTerminal) MakeRaw() (func() error, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.raw = true
	return func() error {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.raw, t.restored = false, true
		return nil
	}, nil
}

func (t *fakeTerminal) Size() (client.TerminalSize, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.size, nil
}

func (t *fakeTerminal) Resized(context.Context) <-chan struct{} { return t.resized }

func (t *fakeTerminal) resize(size client.TerminalSize) {
	t.mu.Lock()
	t.size = size
	t.mu.Unlock()
	t.resized <- struct{}{}
}

func (t *fakeTerminal) isRaw() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.raw
}

func TestComponentLogs(t *testing.T) {
	api := newFakeAPI(t)
	f := newFakeInstances(api)
	tc := loggedIn(t, api)
	query := func() string {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.logQuery.Encode()
	}

	out := tc.mustRun("logs", "web")
	if out != "[web-2] starting\n[web-1] listening on :80\n[web-2] fatal: no config\n" {
		t.Fatalf("logs:\n%s", out)
	}
	if q := query(); q != "" {
		t.Fatalf("plain logs sent %q: every line, every instance", q)
	}

	out = tc.mustRun("logs", "web", "--instance", "web-2", "--previous", "--tail", "20")
	if out != "web-2: listening on :80\n" || query() != "instance=web-2&previous=1&tail=20" {
		t.Fatalf("logs of one instance: %q, query %q", out, query())
	}
	tc.mustRun("logs", "web", "--tail", "-1")
	if q := query(); q != "" {
		t.Fatalf("--tail -1 sent %q", q)
	}

	_, errOut, code := tc.run("logs", "web", "--tail", "0")
	if code != 1 || !strings.Contains(errOut, "--tail must be a number of lines, or -1 for every line kept") {
		t.Fatalf("--tail 0: exit %d, %s", code, errOut)
	}
	_, errOut, _ = tc.run("logs", eventOK, "--instance", "web-1")
	contains(t, "event with --instance", errOut, "Error: --instance is for the logs of a component; "+eventOK+" is an event")

	// Found without an app, like the other component commands.
	delete(tc.vars, "BERTH_APP")
	tc.mustRun("logs", "web")

	f.mu.Lock()
	f.instances = nil
	f.mu.Unlock()
	_, errOut, code = tc.run("logs", "web")
	if code != 1 || errOut != "Error: component web has no instances; start it first\n" {
		t.Fatalf("no instances: exit %d, %q", code, errOut)
	}
}

// TestComponentLogsFollow follows until Ctrl-C, which ends the command
// quietly with the status of an interrupted process.
func TestComponentLogsFollow(t *testing.T) {
	api := newFakeAPI(t)
	f := newFakeInstances(api)
	tc := loggedIn(t, api)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &firstWrite{written: make(chan struct{})}
	go func() {
		select {
		case <-out.written:
		case <-time.After(10 * time.Second):
		}
		cancel() // Ctrl-C once the first lines are on the screen
	}()
	c := &cli{stdin: strings.NewReader(""), getenv: func(k string) string { return tc.vars[k] }}
	var errOut bytes.Buffer
	code := execute(ctx, c, []string{"logs", "-f", "web"}, out, &errOut)
	if code != 130 || errOut.String() != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	if got := out.String(); !strings.HasPrefix(got, "[web-2] starting\n") {
		t.Fatalf("output %q", got)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if q := f.logQuery.Encode(); q != "follow=1&tail=100" {
		t.Fatalf("query %q: -f starts with the last 100 lines", q)
	}
}

// firstWrite is a buffer that says when something was written to it.
type firstWrite struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	once    sync.Once
	written chan struct{}
}

func (w *firstWrite) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer w.once.Do(func() { close(w.written) })
	return w.buf.Write(p)
}

func (w *firstWrite) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func TestInstancesTable(t *testing.T) {
	api := newFakeAPI(t)
	newFakeInstances(api)
	tc := loggedIn(t, api)
	out := tc.mustRun("instances", "web")
	want := "" +
		"ID     STATUS    REASON            RESTARTS  ADDRESS     VERSION\n" +
		"web-2  abnormal  CrashLoopBackOff  4         -           2\n" +
		"       exited with code 1\n" +
		"       last log lines:\n" +
		"       fatal: no config\n" +
		"       advice: read its output with \"berth logs web --instance web-2 --previous\"\n" +
		"web-1  running   Running           0         10.213.0.7  2\n"
	if out != want {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}
	var items []client.Instance
	if err := json.Unmarshal([]byte(tc.mustRun("instances", "web", "-o", "json")), &items); err != nil ||
		len(items) != 2 || items[0].Advice == "" {
		t.Fatalf("-o json: %v %v", items, err)
	}
	tc.tty = true
	if out := tc.mustRun("instances", "web"); !strings.Contains(out, colorRed+"abnormal"+colorReset+"  CrashLoopBackOff") {
		t.Fatalf("status not coloured or misaligned:\n%q", out)
	}
}

func TestExecPropagatesTheExitCode(t *testing.T) {
	api := newFakeAPI(t)
	f := newFakeInstances(api)
	tc := loggedIn(t, api)

	out, errOut, code := tc.run("exec", "web", "--", "exit", "3")
	if code != 3 || out != "bye\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// The first running instance, named on stderr.
	if errOut != "Running in instance web-1 of web (choose with --instance).\n" {
		t.Fatalf("stderr %q", errOut)
	}
	s := f.lastExec(t)
	if s.instance != "web-1" || s.query.Get("tty") != "0" || s.stdin.Len() != 0 {
		t.Fatalf("instance %s, query %v, stdin %q: no terminal and no input without -i", s.instance, s.query, s.stdin.String())
	}

	out, errOut, code = tc.run("exec", "web", "--instance", "web-2", "--", "exit", "0")
	if code != 0 || out != "bye\n" || errOut != "" || f.lastExec(t).instance != "web-2" {
		t.Fatalf("--instance: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	_, errOut, code = tc.run("exec", "web", "--", "fail")
	if code != 1 || !strings.HasSuffix(errOut, "Error: exec in web-1: container is not running\n") {
		t.Fatalf("runtime error: exit %d, %q", code, errOut)
	}
	_, errOut, code = tc.run("exec", "web", "--instance", "web-9")
	if code != 1 || errOut != "Error: instance \"web-9\" not found in component web\n" {
		t.Fatalf("unknown instance: exit %d, %q", code, errOut)
	}
	_, errOut, _ = tc.run("exec", "web", "ls", "/")
	contains(t, "command without --", errOut, `put the command to run after "--", e.g. berth exec web -- ls /`)
}

func TestExecPipesStdin(t *testing.T) {
	api := newFakeAPI(t)
	f := newFakeInstances(api)
	tc := loggedIn(t, api)
	out, _, code := tc.runWithInput("hello\nEOF\n", "exec", "web", "-i", "--", "cat")
	if code != 0 || out != "hello\nEOF\n" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	if s := f.lastExec(t); s.query.Get("tty") != "0" || strings.Join(s.query["cmd"], " ") != "cat" {
		t.Fatalf("query %v", s.query)
	}

	// -t without a terminal falls back to pipes.
	out, errOut, code := tc.runWithInput("EOF\n", "exec", "web", "-it", "--", "cat")
	if code != 0 || out != "EOF\n" || !strings.Contains(errOut, "stdin is not a terminal; running without a TTY") {
		t.Fatalf("-it on a pipe: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestExecNeedsARunningInstance(t *testing.T) {
	api := newFakeAPI(t)
	f := newFakeInstances(api)
	tc := loggedIn(t, api)
	f.mu.Lock()
	f.instances = f.instances[:1]
	f.mu.Unlock()
	_, errOut, code := tc.run("exec", "web")
	if code != 1 || errOut != "Error: no instance of web is running: web-2 abnormal (CrashLoopBackOff); name one with --instance to try anyway\n" {
		t.Fatalf("exit %d, %q", code, errOut)
	}
	f.mu.Lock()
	f.instances = nil
	f.mu.Unlock()
	_, errOut, _ = tc.run("exec", "web")
	contains(t, "no instances", errOut, "Error: component web has no instances; deploy or start it first")
}

// TestExecTerminal runs the default shell on a (fake) terminal: raw mode
// for the session, the size sent at once and after a change, the remote
// exit code as berth's.
func TestExecTerminal(t *testing.T) {
	api := newFakeAPI(t)
	f := newFakeInstances(api)
	tc := loggedIn(t, api)
	term := newFakeTerminal()
	f.term, tc.term, tc.tty = term, term, true

	out, _, code := tc.runWithInput("exit 5\r", "exec", "web", "--team", "acme")
	if code != 5 || out != "$ exit 5\r\n" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	s := f.lastExec(t)
	if s.query.Get("tty") != "1" || strings.Join(s.query["cmd"], " ") != "/bin/sh" {
		t.Fatalf("query %v", s.query)
	}
	f.mu.Lock()
	resizes := fmt.Sprint(s.resizes)
	f.mu.Unlock()
	if resizes != "[{80 24} {132 43}]" {
		t.Fatalf("resizes %s", resizes)
	}
	if term.raw || !term.restored {
		t.Fatalf("terminal raw %v, restored %v", term.raw, term.restored)
	}

	// -t=false on a terminal: pipes, and no input without -i.
	term.restored = false
	tc.mustRun("exec", "web", "-t=false", "--", "exit", "0")
	if s := f.lastExec(t); s.query.Get("tty") != "0" || term.restored {
		t.Fatalf("-t=false: query %v, raw mode used %v", s.query, term.restored)
	}
}
