package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/berth-platform/berth/internal/model"
)

// CreateEvent fills in the event's ID, CreatedAt and Status (running) when
// they are empty. The task, if any, is enqueued as described at enqueueTask.
func (s *sqlStore) CreateEvent(ctx context.Context, e *model.Event, task *model.Task) error {
	if e == nil {
		return errNil("event")
	}
	if e.ID == "" {
		e.ID = newID()
	}
	if e.Status == "" {
		e.Status = model.EventRunning
	}
	e.CreatedAt = nowOr(e.CreatedAt)
	e.StartedAt, e.FinishedAt = storeTimePtr(e.StartedAt), storeTimePtr(e.FinishedAt)
	return s.tx(ctx, func(h handle) error {
		_, err := h.exec(ctx, `INSERT INTO events
			(id, team, type, target, status, reason, message, created_at, started_at, finished_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			e.ID, e.Team, e.Type, e.Target, string(e.Status), e.Reason, e.Message,
			s.d.timeArg(e.CreatedAt), s.d.nullTimeArg(e.StartedAt), s.d.nullTimeArg(e.FinishedAt))
		if constraintOf(err) == uniqueViolation {
			return conflict("event %q already exists", e.ID)
		}
		if err != nil {
			return fmt.Errorf("create event %s on %s: %w", e.Type, e.Target, err)
		}
		if task == nil {
			return nil
		}
		return s.enqueueTask(ctx, h, e, task)
	})
}

const eventCols = `id, team, type, target, status, reason, message, created_at, started_at, finished_at`

func scanEvent(row rowScanner) (model.Event, error) {
	var e model.Event
	err := row.Scan(&e.ID, &e.Team, &e.Type, &e.Target, &e.Status, &e.Reason, &e.Message,
		timeCol{&e.CreatedAt}, nullTimeCol{&e.StartedAt}, nullTimeCol{&e.FinishedAt})
	return e, err
}

func (s *sqlStore) GetEvent(ctx context.Context, id string) (*model.Event, error) {
	e, err := scanEvent(s.r().queryRow(ctx, `SELECT `+eventCols+` FROM events WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("event %q", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get event %q: %w", id, err)
	}
	return &e, nil
}

// ListEvents treats a Limit of 0 or less as no limit.
func (s *sqlStore) ListEvents(ctx context.Context, f model.EventFilter) ([]model.Event, error) {
	var where []string
	var args []any
	if f.Team != "" {
		where, args = append(where, "team = ?"), append(args, f.Team)
	}
	if f.Target != "" {
		// substr rather than LIKE: no wildcards to escape, and SQLite's LIKE
		// ignores case. Both engines count characters, not bytes.
		where = append(where, "substr(target, 1, ?) = ?")
		args = append(args, utf8.RuneCountInString(f.Target), f.Target)
	}
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, string(f.Status))
	}
	if !f.Since.IsZero() {
		where, args = append(where, "created_at >= ?"), append(args, s.d.timeArg(f.Since))
	}
	q := `SELECT ` + eventCols + ` FROM events`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY created_at DESC, id DESC`
	if f.Limit > 0 {
		q, args = q+` LIMIT ?`, append(args, f.Limit)
	}
	rows, err := s.r().query(ctx, q, args...)
	es, err := collect(rows, err, scanEvent)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return es, nil
}

// UpdateEvent writes the status, reason, message and start and finish
// times; the rest of an event does not change. It reads the rest back into e.
func (s *sqlStore) UpdateEvent(ctx context.Context, e *model.Event) error {
	if e == nil {
		return errNil("event")
	}
	e.StartedAt, e.FinishedAt = storeTimePtr(e.StartedAt), storeTimePtr(e.FinishedAt)
	err := s.w().queryRow(ctx, `UPDATE events SET status = ?, reason = ?, message = ?, started_at = ?, finished_at = ?
		WHERE id = ? RETURNING team, type, target, created_at`,
		string(e.Status), e.Reason, e.Message, s.d.nullTimeArg(e.StartedAt), s.d.nullTimeArg(e.FinishedAt), e.ID).
		Scan(&e.Team, &e.Type, &e.Target, timeCol{&e.CreatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return notFound("event %q", e.ID)
	}
	if err != nil {
		return fmt.Errorf("update event %q: %w", e.ID, err)
	}
	return nil
}

// logBatch bounds the rows of one INSERT: 6 parameters each stays far below
// SQLite's 32766 and PostgreSQL's 65535.
const logBatch = 500

// AppendLog takes the seqs by bumping the event's log_seq counter in the
// same transaction as the insert. On PostgreSQL the UPDATE locks the event
// row until commit, so a concurrent appender waits and then continues from
// the committed counter; on SQLite writers are serialized anyway. Either
// way seqs have no gaps and no duplicates.
func (s *sqlStore) AppendLog(ctx context.Context, eventID string, lines []model.LogLine) ([]model.LogLine, error) {
	out := make([]model.LogLine, len(lines))
	copy(out, lines)
	now := storeTime(time.Now())
	err := s.tx(ctx, func(h handle) error {
		var last int64
		err := h.queryRow(ctx, `UPDATE events SET log_seq = log_seq + ? WHERE id = ? RETURNING log_seq`,
			len(out), eventID).Scan(&last)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("event %q", eventID)
		}
		if err != nil {
			return fmt.Errorf("append log of event %q: %w", eventID, err)
		}
		first := last - int64(len(out)) + 1
		for i := range out {
			out[i].Seq = first + int64(i)
			if out[i].Time.IsZero() {
				out[i].Time = now
			} else {
				out[i].Time = storeTime(out[i].Time)
			}
		}
		for start := 0; start < len(out); start += logBatch {
			batch := out[start:min(start+logBatch, len(out))]
			var q strings.Builder
			q.WriteString(`INSERT INTO event_logs (event_id, seq, time, level, stage, text) VALUES `)
			args := make([]any, 0, 6*len(batch))
			for i, l := range batch {
				if i > 0 {
					q.WriteString(", ")
				}
				q.WriteString("(?, ?, ?, ?, ?, ?)")
				args = append(args, eventID, l.Seq, s.d.timeArg(l.Time), l.Level, l.Stage, l.Text)
			}
			if _, err := h.exec(ctx, q.String(), args...); err != nil {
				return fmt.Errorf("append log of event %q: %w", eventID, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ReadLog treats a limit of 0 or less as no limit. An empty result from an
// unknown event is ErrNotFound, so a follower does not poll forever.
func (s *sqlStore) ReadLog(ctx context.Context, eventID string, after int64, limit int) ([]model.LogLine, error) {
	q := `SELECT seq, time, level, stage, text FROM event_logs WHERE event_id = ? AND seq > ? ORDER BY seq`
	args := []any{eventID, after}
	if limit > 0 {
		q, args = q+` LIMIT ?`, append(args, limit)
	}
	rows, err := s.r().query(ctx, q, args...)
	ls, err := collect(rows, err, func(row rowScanner) (model.LogLine, error) {
		var l model.LogLine
		err := row.Scan(&l.Seq, timeCol{&l.Time}, &l.Level, &l.Stage, &l.Text)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("read log of event %q: %w", eventID, err)
	}
	if len(ls) == 0 {
		var one int
		err := s.r().queryRow(ctx, `SELECT 1 FROM events WHERE id = ?`, eventID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, notFound("event %q", eventID)
		}
		if err != nil {
			return nil, fmt.Errorf("read log of event %q: %w", eventID, err)
		}
	}
	return ls, nil
}
