package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/coder/websocket"

	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/runtime"
	"github.com/berth-platform/berth/internal/worker"
)

// instancesOf asks the runtime for c's instances; none without a runtime.
func (a *API) instancesOf(ctx context.Context, c *model.Component) ([]model.Instance, error) {
	if a.cfg.Runtime == nil || c.Desired == model.DesiredUndeployed {
		return nil, nil
	}
	if c.Kind == model.KindThirdParty {
		if a.cfg.ThirdParty == nil {
			return nil, nil
		}
		return a.cfg.ThirdParty.Instances(c), nil
	}
	return a.cfg.Runtime.Instances(ctx, c.ID)
}

func (a *API) listInstances(w http.ResponseWriter, r *http.Request) error {
	c, err := a.componentAccess(r, model.RoleViewer)
	if err != nil {
		return err
	}
	instances, err := a.instancesOf(r.Context(), c)
	if err != nil {
		return err
	}
	list := instanceList{Items: nonNil(instances)}
	if c.Status == model.StatusWaiting {
		// No instance yet, and not for want of a deploy: say whom it waits for.
		if list.WaitingFor, err = worker.WaitingOn(r.Context(), a.store, c); err != nil {
			return err
		}
		list.Status, list.Message = c.Status, c.StatusMessage
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

// instanceList is a component's instances, with why there are none when
// the component waits for its dependencies.
type instanceList struct {
	Items      []model.Instance      `json:"items"`
	Status     model.ComponentStatus `json:"status,omitempty"`
	Message    string                `json:"message,omitempty"`
	WaitingFor []string              `json:"waiting_for,omitempty"`
}

// instanceOf checks that id is an instance of c.
func (a *API) instanceOf(ctx context.Context, c *model.Component, id string) error {
	instances, err := a.instancesOf(ctx, c)
	if err != nil {
		return err
	}
	for _, in := range instances {
		if in.ID == id {
			return nil
		}
	}
	return notFound("instance %q not found in component %s", id, c.Alias)
}

// componentLogs streams container output: one instance, or all of them
// interleaved line by line with an instance prefix.
func (a *API) componentLogs(w http.ResponseWriter, r *http.Request) error {
	c, err := a.componentAccess(r, model.RoleViewer)
	if err != nil {
		return err
	}
	if a.cfg.Runtime == nil {
		return conflict("no runtime engine is attached to this server, so there are no container logs")
	}
	q := r.URL.Query()
	opts := runtime.LogOptions{Follow: followRequested(r), Previous: q.Get("previous") == "1" || q.Get("previous") == "true"}
	if t := q.Get("tail"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			return invalidField("tail", "must be a number of lines (got %q)", t)
		}
		opts.Tail = n
	}
	var ids []string
	if id := q.Get("instance"); id != "" {
		if err := a.instanceOf(r.Context(), c, id); err != nil {
			return err
		}
		ids = []string{id}
	} else {
		instances, err := a.instancesOf(r.Context(), c)
		if err != nil {
			return err
		}
		for _, in := range instances {
			ids = append(ids, in.ID)
		}
	}
	if len(ids) == 0 {
		return conflict("component %s has no instances; start it first", c.Alias)
	}
	prefix := len(ids) > 1
	// Open every stream before answering, so that a log that cannot be
	// read is an error status, not a line in a 200.
	streams := map[string]io.ReadCloser{}
	for _, id := range ids {
		stream, err := a.cfg.Runtime.Logs(r.Context(), c.ID, id, opts)
		if err != nil {
			for _, s := range streams {
				s.Close()
			}
			return errorf(http.StatusConflict, "no_logs", "cannot read the logs of %s: %v", id, err)
		}
		streams[id] = stream
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for id, stream := range streams {
		wg.Add(1)
		go func(id string, stream io.ReadCloser) {
			defer wg.Done()
			defer stream.Close()
			sc := bufio.NewScanner(stream)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				mu.Lock()
				if prefix {
					fmt.Fprintf(w, "[%s] ", id)
				}
				w.Write(sc.Bytes())
				w.Write([]byte{'\n'})
				_ = rc.Flush()
				mu.Unlock()
			}
		}(id, stream)
	}
	wg.Wait()
	return nil
}

// execMessage is a control message of the exec WebSocket.
type execMessage struct {
	Type string `json:"type"` // resize, stdin_eof (client); exit, error (server)
	Cols uint16 `json:"cols,omitempty"`
	Rows uint16 `json:"rows,omitempty"`
	Code int    `json:"code"`
	Text string `json:"message,omitempty"`
}

// exec runs a command in an instance over a WebSocket: binary frames carry
// stdin and output, text frames carry JSON control messages.
func (a *API) exec(w http.ResponseWriter, r *http.Request) error {
	c, err := a.componentAccess(r, model.RoleDeveloper)
	if err != nil {
		return err
	}
	if a.cfg.Runtime == nil {
		return conflict("no runtime engine is attached to this server")
	}
	id := r.PathValue("instance")
	if err := a.instanceOf(r.Context(), c, id); err != nil {
		return err
	}
	cmd := r.URL.Query()["cmd"]
	if len(cmd) == 0 {
		cmd = []string{"/bin/sh"}
	}
	tty := r.URL.Query().Get("tty") != "0"
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return nil
	}
	defer conn.CloseNow()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()

	stdinR, stdinW := io.Pipe()
	resize := make(chan runtime.TerminalSize, 4)
	go func() {
		defer stdinW.Close()
		for {
			typ, b, err := conn.Read(ctx)
			if err != nil {
				cancel()
				return
			}
			if typ == websocket.MessageBinary {
				if _, err := stdinW.Write(b); err != nil {
					return
				}
				continue
			}
			var m execMessage
			if json.Unmarshal(b, &m) == nil && m.Type == "stdin_eof" {
				// The client's input ended: the command sees end of file
				// while its output still flows back.
				stdinW.Close()
				continue
			}
			if m.Type == "resize" && m.Cols > 0 && m.Rows > 0 {
				select {
				case resize <- runtime.TerminalSize{Cols: m.Cols, Rows: m.Rows}:
				default:
				}
			}
		}
	}()
	out := &wsWriter{ctx: ctx, conn: conn}
	code, err := a.cfg.Runtime.Exec(ctx, c.ID, id, runtime.ExecOptions{
		Cmd: cmd, TTY: tty, Stdin: stdinR, Stdout: out, Stderr: out, Resize: resize,
	})
	msg := execMessage{Type: "exit", Code: code}
	if err != nil && !errors.Is(err, context.Canceled) {
		msg = execMessage{Type: "error", Text: err.Error()}
	}
	b, _ := json.Marshal(msg)
	_ = conn.Write(context.WithoutCancel(ctx), websocket.MessageText, b)
	conn.Close(websocket.StatusNormalClosure, msg.Type)
	return nil
}

// wsWriter sends writes as binary frames, one writer at a time.
type wsWriter struct {
	ctx  context.Context
	conn *websocket.Conn
	mu   sync.Mutex
}

func (w *wsWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.conn.Write(w.ctx, websocket.MessageBinary, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// execCommand runs a command without a terminal and answers its output:
// the scriptable form of exec.
func (a *API) execCommand(w http.ResponseWriter, r *http.Request) error {
	if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		// A client that upgrades a POST gets the terminal too; the
		// WebSocket handshake itself is defined on GET.
		r.Method = http.MethodGet
		return a.exec(w, r)
	}
	c, err := a.componentAccess(r, model.RoleDeveloper)
	if err != nil {
		return err
	}
	var in struct {
		Cmd   []string `json:"cmd"`
		Stdin string   `json:"stdin"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if len(in.Cmd) == 0 {
		return invalidField("cmd", "is required: the command and its arguments, e.g. [\"ls\", \"/\"]")
	}
	if a.cfg.Runtime == nil {
		return conflict("no runtime engine is attached to this server")
	}
	id := r.PathValue("instance")
	if err := a.instanceOf(r.Context(), c, id); err != nil {
		return err
	}
	var out limitedBuffer
	out.limit = 1 << 20
	code, err := a.cfg.Runtime.Exec(r.Context(), c.ID, id, runtime.ExecOptions{
		Cmd: in.Cmd, Stdin: stringsReader(in.Stdin), Stdout: &out, Stderr: &out,
	})
	if err != nil {
		return errorf(http.StatusUnprocessableEntity, "exec_failed", "cannot run %v in %s: %v", in.Cmd, id, err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"exit_code": code, "output": out.String(), "truncated": out.truncated})
	return nil
}
