package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/coder/websocket"

	"github.com/berth-platform/berth/internal/model"
	"github.com/berth-platform/berth/internal/worker"
)

func eventFilter(r *http.Request) (model.EventFilter, error) {
	q := r.URL.Query()
	f := model.EventFilter{Target: q.Get("target"), Status: model.EventStatus(q.Get("status")), Limit: 100}
	if f.Status != "" && f.Status != model.EventRunning && !f.Status.Done() {
		return f, invalidField("status", "must be running, success or failure (got %q)", f.Status)
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return f, invalidField("limit", "must be between 1 and 1000 (got %q)", s)
		}
		f.Limit = n
	}
	return f, nil
}

func (a *API) listEvents(w http.ResponseWriter, r *http.Request) error {
	f, err := eventFilter(r)
	if err != nil {
		return err
	}
	p := principalFrom(r.Context())
	f.Team = r.URL.Query().Get("team")
	if !p.Admin {
		if f.Team != "" && f.Team != p.Team {
			return notFound("team %q not found", f.Team)
		}
		f.Team = p.Team
	}
	return a.writeEvents(w, r, f)
}

func (a *API) listTeamEvents(w http.ResponseWriter, r *http.Request) error {
	team, err := a.teamAccess(r, model.RoleViewer)
	if err != nil {
		return err
	}
	f, err := eventFilter(r)
	if err != nil {
		return err
	}
	f.Team = team.Name
	return a.writeEvents(w, r, f)
}

func (a *API) listComponentEvents(w http.ResponseWriter, r *http.Request) error {
	c, err := a.componentAccess(r, model.RoleViewer)
	if err != nil {
		return err
	}
	f, err := eventFilter(r)
	if err != nil {
		return err
	}
	f.Team, f.Target = c.Team, worker.ComponentTarget(c)
	return a.writeEvents(w, r, f)
}

// writeEvents answers the events f selects.
func (a *API) writeEvents(w http.ResponseWriter, r *http.Request, f model.EventFilter) error {
	if f.Team != "" {
		since, err := a.teamSince(r, f.Team)
		if err != nil {
			return err
		}
		f.Since = since
	}
	evs, err := a.store.ListEvents(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, items(evs))
	return nil
}

// eventAccess loads the event of the path if the caller's team owns it.
func (a *API) eventAccess(r *http.Request) (*model.Event, error) {
	id := r.PathValue("id")
	ev, err := a.store.GetEvent(r.Context(), id)
	p := principalFrom(r.Context())
	if errors.Is(err, model.ErrNotFound) || (err == nil && !p.Admin && ev.Team != p.Team) {
		return nil, notFound("event %q not found", id)
	}
	if err != nil || p.Admin {
		return ev, err
	}
	since, err := a.teamSince(r, p.Team)
	if err != nil {
		return nil, err
	}
	if ev.CreatedAt.Before(since) {
		// An earlier team of the same name did it: not this team's.
		return nil, notFound("event %q not found", id)
	}
	return ev, nil
}

// teamSince is when the team of that name was created: events older than
// that belong to a deleted team that had its name. A team that no longer
// exists (its own delete's event) shows all of them.
func (a *API) teamSince(r *http.Request, name string) (time.Time, error) {
	t, err := a.store.GetTeam(r.Context(), name)
	if errors.Is(err, model.ErrNotFound) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	return t.CreatedAt, nil
}

func (a *API) getEvent(w http.ResponseWriter, r *http.Request) error {
	ev, err := a.eventAccess(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ev)
	return nil
}

func afterParam(r *http.Request) (int64, error) {
	s := r.URL.Query().Get("after")
	if s == "" {
		// EventSource sends the last id it saw when it reconnects.
		s = r.Header.Get("Last-Event-ID")
	}
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, invalidField("after", "must be a line number (got %q)", s)
	}
	return n, nil
}

// eventLog answers the log as JSON, or with ?follow=1 as Server-Sent Events
// that end when the event ends.
func (a *API) eventLog(w http.ResponseWriter, r *http.Request) error {
	ev, err := a.eventAccess(r)
	if err != nil {
		return err
	}
	after, err := afterParam(r)
	if err != nil {
		return err
	}
	if followRequested(r) {
		return a.streamEventLog(w, r, ev, after)
	}
	lines, err := a.store.ReadLog(r.Context(), ev.ID, after, 10000)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"event": ev, "lines": nonNil(lines)})
	return nil
}

// keepAlive stops proxies from closing a quiet stream.
const keepAlive = 15 * time.Second

func (a *API) streamEventLog(w http.ResponseWriter, r *http.Request, ev *model.Event, after int64) error {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	lines := make(chan model.LogLine, 256)
	done := make(chan struct{})
	var final *model.Event
	var followErr error
	go func() {
		defer close(done)
		final, followErr = a.log.Follow(ctx, ev.ID, after, func(l model.LogLine) error {
			select {
			case lines <- l:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	write := func(format string, args ...any) bool {
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	for {
		select {
		case l := <-lines:
			b, _ := json.Marshal(l)
			if !write("id: %d\nevent: line\ndata: %s\n\n", l.Seq, b) {
				return nil
			}
		case <-tick.C:
			if !write(": ping\n\n") {
				return nil
			}
		case <-done:
			// Drain what the follower queued before it returned.
			for {
				select {
				case l := <-lines:
					b, _ := json.Marshal(l)
					if !write("id: %d\nevent: line\ndata: %s\n\n", l.Seq, b) {
						return nil
					}
					continue
				default:
				}
				break
			}
			if followErr != nil || final == nil {
				write("event: error\ndata: %q\n\n", fmt.Sprint(followErr))
				return nil
			}
			b, _ := json.Marshal(final)
			write("event: end\ndata: %s\n\n", b)
			return nil
		}
	}
}

// eventLogWebSocket is the log over a WebSocket: {"type":"line","line":...}
// messages, then {"type":"end","event":...}.
func (a *API) eventLogWebSocket(w http.ResponseWriter, r *http.Request) error {
	ev, err := a.eventAccess(r)
	if err != nil {
		return err
	}
	after, err := afterParam(r)
	if err != nil {
		return err
	}
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return nil // Accept has answered the client already.
	}
	defer conn.CloseNow()
	ctx := conn.CloseRead(r.Context())
	send := func(v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return conn.Write(wctx, websocket.MessageText, b)
	}
	final, err := a.log.Follow(ctx, ev.ID, after, func(l model.LogLine) error {
		return send(map[string]any{"type": "line", "line": l})
	})
	if err != nil {
		return nil
	}
	if err := send(map[string]any{"type": "end", "event": final}); err != nil {
		return nil
	}
	conn.Close(websocket.StatusNormalClosure, "event ended")
	return nil
}
