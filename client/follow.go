package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// protocolError is an answer that does not follow the API. Repeating the
// request would get the same answer, so followers give up at once.
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return e.msg }

// callbackError carries the error of the caller's line function out of a
// stream, so that it is returned as is and never retried.
type callbackError struct{ err error }

func (e *callbackError) Error() string { return e.err.Error() }

// errEndedEarly is a stream that closed before the event ended, e.g. because
// a proxy or the server restarted; the follower reconnects.
var errEndedEarly = errors.New("log stream closed before the event ended")

// stream is one connection of a log follower. It sends the lines after Seq
// after to emit, calls alive whenever the server showed a sign of life, and
// returns the event once it ends.
type stream func(ctx context.Context, eventID string, after int64, emit func(Line) error, alive func()) (*Event, error)

// FollowLog calls fn with each log line of the event after Seq after (0 for
// the whole log), as they are written, and returns the event once it has
// ended. It reads the server-sent-event stream; when the connection drops,
// it reconnects from the last line fn accepted, so fn sees every line once
// and in order. An error from fn stops following and is returned as is.
func (c *Client) FollowLog(ctx context.Context, eventID string, after int64, fn func(Line) error) (*Event, error) {
	return c.follow(ctx, eventID, after, fn, c.streamSSE)
}

// FollowLogWebSocket is FollowLog over the WebSocket endpoint, for networks
// that buffer or cut server-sent events.
func (c *Client) FollowLogWebSocket(ctx context.Context, eventID string, after int64, fn func(Line) error) (*Event, error) {
	return c.follow(ctx, eventID, after, fn, c.streamWebSocket)
}

func (c *Client) follow(ctx context.Context, eventID string, after int64, fn func(Line) error, open stream) (*Event, error) {
	last := after
	emit := func(l Line) error {
		if l.Seq <= last {
			return nil // replayed by a server that resumed earlier than asked
		}
		if err := fn(l); err != nil {
			return &callbackError{err}
		}
		last = l.Seq
		return nil
	}
	failures := 0
	pause := c.followBackoff
	for {
		var alive bool
		ev, err := open(ctx, eventID, last, emit, func() { alive = true })
		if err == nil {
			return ev, nil
		}
		var cbErr *callbackError
		if errors.As(err, &cbErr) {
			return nil, cbErr.err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !retryable(err) {
			return nil, err
		}
		if alive {
			// Only a connection that gave nothing counts against the limit:
			// a long build behind a proxy that cuts idle streams reconnects
			// many times and must not give up.
			failures, pause = 0, c.followBackoff
		}
		failures++
		if failures > c.followRetries {
			return nil, fmt.Errorf("follow log of %s: %w (gave up after %d attempts)", eventID, err, failures)
		}
		if err := sleep(ctx, pause); err != nil {
			return nil, err
		}
		pause = min(pause*2, 10*time.Second)
	}
}

// idleGuard cancels a connection that has been silent for too long: a
// connection dropped without a TCP reset would otherwise hang forever.
type idleGuard struct {
	timer *time.Timer
	fired atomic.Bool
	d     time.Duration
}

func newIdleGuard(d time.Duration, cancel context.CancelFunc) *idleGuard {
	g := &idleGuard{d: d}
	g.timer = time.AfterFunc(d, func() { g.fired.Store(true); cancel() })
	return g
}

func (g *idleGuard) touch() { g.timer.Reset(g.d) }
func (g *idleGuard) stop()  { g.timer.Stop() }

// explain replaces the context error a fired guard causes by what happened.
func (g *idleGuard) explain(err error) error {
	if g.fired.Load() {
		return fmt.Errorf("log stream silent for %s", g.d)
	}
	return err
}

func (c *Client) streamSSE(ctx context.Context, eventID string, after int64, emit func(Line) error, alive func()) (*Event, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	guard := newIdleGuard(c.followIdle, cancel)
	defer guard.stop()

	q := url.Values{"follow": {"1"}}
	if after > 0 {
		q.Set("after", strconv.FormatInt(after, 10))
	}
	req, err := c.newRequest(ctx, http.MethodGet, apiPath("events", eventID, "log"), q, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, guard.explain(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, decodeError(resp)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return nil, &protocolError{fmt.Sprintf("log stream: server answered %q, not text/event-stream", mt)}
	}

	r := bufio.NewReader(resp.Body)
	var msg sseMessage
	for {
		raw, err := r.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				// A last message without its blank line still counts: some
				// servers close right after writing "end".
				if raw != "" {
					msg.field(strings.TrimRight(raw, "\r\n"))
				}
				if ev, derr := msg.dispatch(emit); ev != nil || derr != nil {
					return ev, derr
				}
				return nil, errEndedEarly
			}
			return nil, guard.explain(err)
		}
		guard.touch()
		alive()
		line := strings.TrimRight(raw, "\r\n")
		if line != "" {
			msg.field(line)
			continue
		}
		ev, err := msg.dispatch(emit)
		if ev != nil || err != nil {
			return ev, err
		}
		msg = sseMessage{}
	}
}

// sseMessage gathers the fields of one server-sent event until the blank
// line that ends it.
type sseMessage struct {
	event string
	data  []string
}

func (m *sseMessage) field(line string) {
	if strings.HasPrefix(line, ":") {
		return // a comment, sent as a keep-alive
	}
	name, value, _ := strings.Cut(line, ":")
	value = strings.TrimPrefix(value, " ")
	switch name {
	case "event":
		m.event = value
	case "data":
		m.data = append(m.data, value)
	}
	// "id" repeats the line's seq, which the data carries too; "retry" is
	// for browsers, the follower has its own backoff.
}

// dispatch handles a complete message: lines go to emit, "end" returns the
// final event. Messages of unknown types are skipped so the server can add
// some later.
func (m *sseMessage) dispatch(emit func(Line) error) (*Event, error) {
	if len(m.data) == 0 {
		return nil, nil
	}
	data := []byte(strings.Join(m.data, "\n"))
	switch m.event {
	case "line", "", "message":
		var l Line
		if err := json.Unmarshal(data, &l); err != nil {
			return nil, &protocolError{fmt.Sprintf("log stream: bad line %q: %v", data, err)}
		}
		return nil, emit(l)
	case "end":
		var ev Event
		if err := json.Unmarshal(data, &ev); err != nil {
			return nil, &protocolError{fmt.Sprintf("log stream: bad end event %q: %v", data, err)}
		}
		return &ev, nil
	}
	return nil, nil
}

// wsMessage is one text message of the WebSocket log endpoint.
type wsMessage struct {
	Type  string `json:"type"`
	Line  *Line  `json:"line,omitempty"`
	Event *Event `json:"event,omitempty"`
}

func (c *Client) streamWebSocket(ctx context.Context, eventID string, after int64, emit func(Line) error, alive func()) (*Event, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	guard := newIdleGuard(c.followIdle, cancel)
	defer guard.stop()

	u, err := url.Parse(c.base + apiPath("events", eventID, "log", "ws"))
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	}
	if after > 0 {
		u.RawQuery = url.Values{"after": {strconv.FormatInt(after, 10)}}.Encode()
	}
	header := http.Header{"User-Agent": {c.userAgent}}
	if c.token != "" {
		header.Set("Authorization", "Bearer "+c.token)
	}
	conn, resp, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{HTTPClient: c.hc, HTTPHeader: header})
	if err != nil {
		if resp != nil && resp.StatusCode >= 400 {
			return nil, decodeError(resp)
		}
		return nil, guard.explain(err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(4 << 20)

	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) == websocket.StatusNormalClosure {
				return nil, errEndedEarly
			}
			return nil, guard.explain(err)
		}
		guard.touch()
		alive()
		if typ != websocket.MessageText {
			continue
		}
		var m wsMessage
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, &protocolError{fmt.Sprintf("log stream: bad message %q: %v", data, err)}
		}
		switch {
		case m.Type == "line" && m.Line != nil:
			if err := emit(*m.Line); err != nil {
				return nil, err
			}
		case m.Type == "end" && m.Event != nil:
			conn.Close(websocket.StatusNormalClosure, "")
			return m.Event, nil
		}
	}
}
