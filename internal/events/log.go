// Package events is berth's event log: every operation is an event whose
// lines are persisted and fanned out to live followers.
//
// Followers read by sequence number, so the switch from history to live lines
// has no gap and no duplicate: a follower registers for a wake-up before it
// reads, reads everything after its cursor, and sleeps only when it is level.
package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/berth-platform/berth/internal/model"
)

// Storage is what the log needs of the store.
type Storage interface {
	GetEvent(ctx context.Context, id string) (*model.Event, error)
	UpdateEvent(ctx context.Context, e *model.Event) error
	AppendLog(ctx context.Context, eventID string, lines []model.LogLine) ([]model.LogLine, error)
	ReadLog(ctx context.Context, eventID string, after int64, limit int) ([]model.LogLine, error)
}

// pollInterval bounds how late a follower sees lines written by another
// berth process (PostgreSQL HA), whose appends do not wake it.
const pollInterval = time.Second

// Log appends to events and follows them.
type Log struct {
	store Storage
	now   func() time.Time

	mu      sync.Mutex
	waiters map[string]chan struct{}
}

// NewLog returns a log over store.
func NewLog(store Storage) *Log {
	return &Log{store: store, now: time.Now, waiters: map[string]chan struct{}{}}
}

// wait returns a channel closed at the next change of event id.
func (l *Log) wait(id string) <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	ch, ok := l.waiters[id]
	if !ok {
		ch = make(chan struct{})
		l.waiters[id] = ch
	}
	return ch
}

func (l *Log) notify(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ch, ok := l.waiters[id]; ok {
		close(ch)
		delete(l.waiters, id)
	}
}

// Append stores lines at the end of the event's log and wakes its followers.
func (l *Log) Append(ctx context.Context, eventID string, lines ...model.LogLine) error {
	if len(lines) == 0 {
		return nil
	}
	if _, err := l.store.AppendLog(ctx, eventID, lines); err != nil {
		return fmt.Errorf("append to event %s: %w", eventID, err)
	}
	l.notify(eventID)
	return nil
}

// Printf appends one info line in the given stage ("" for none).
func (l *Log) Printf(ctx context.Context, eventID, stage, format string, args ...any) {
	l.write(ctx, eventID, "info", stage, fmt.Sprintf(format, args...))
}

// Errorf appends one error line in the given stage.
func (l *Log) Errorf(ctx context.Context, eventID, stage, format string, args ...any) {
	l.write(ctx, eventID, "error", stage, fmt.Sprintf(format, args...))
}

func (l *Log) write(ctx context.Context, eventID, level, stage, text string) {
	line := model.LogLine{Time: l.now().UTC(), Level: level, Stage: stage, Text: text}
	if err := l.Append(ctx, eventID, line); err != nil {
		// A lost log line must not fail the operation it describes.
		slog.Warn("event log line lost", "event", eventID, "err", err, "text", text)
	}
}

// Start marks the event running (again) and stamps its start time.
func (l *Log) Start(ctx context.Context, eventID string) (*model.Event, error) {
	ev, err := l.store.GetEvent(ctx, eventID)
	if err != nil {
		return nil, fmt.Errorf("start event: %w", err)
	}
	if ev.StartedAt == nil {
		now := l.now().UTC()
		ev.StartedAt = &now
	}
	ev.Status = model.EventRunning
	if err := l.store.UpdateEvent(ctx, ev); err != nil {
		return nil, fmt.Errorf("start event %s: %w", eventID, err)
	}
	l.notify(eventID)
	return ev, nil
}

// Finish ends the event with status, a short reason and a message.
func (l *Log) Finish(ctx context.Context, eventID string, status model.EventStatus, reason, message string) error {
	ev, err := l.store.GetEvent(ctx, eventID)
	if err != nil {
		return fmt.Errorf("finish event: %w", err)
	}
	now := l.now().UTC()
	ev.Status, ev.Reason, ev.Message, ev.FinishedAt = status, reason, message, &now
	if ev.StartedAt == nil {
		ev.StartedAt = &now
	}
	if err := l.store.UpdateEvent(ctx, ev); err != nil {
		return fmt.Errorf("finish event %s: %w", eventID, err)
	}
	l.notify(eventID)
	return nil
}

// ErrStop may be returned by a Follow callback to stop following quietly.
var ErrStop = errors.New("stop following")

// Follow calls fn for every line after seq `after`, then for every new line
// until the event ends, and returns the ended event. It returns early with
// ctx's error, or with fn's error (nil for ErrStop).
func (l *Log) Follow(ctx context.Context, eventID string, after int64, fn func(model.LogLine) error) (*model.Event, error) {
	const batch = 500
	for {
		woken := l.wait(eventID)
		// Read the status before the lines: if it has ended, no line can
		// follow the ones read next, so reaching their end means done.
		ev, err := l.store.GetEvent(ctx, eventID)
		if err != nil {
			return nil, fmt.Errorf("follow event %s: %w", eventID, err)
		}
		for {
			lines, err := l.store.ReadLog(ctx, eventID, after, batch)
			if err != nil {
				return nil, fmt.Errorf("follow event %s: %w", eventID, err)
			}
			for _, line := range lines {
				if err := fn(line); err != nil {
					if errors.Is(err, ErrStop) {
						return ev, nil
					}
					return ev, err
				}
				after = line.Seq
			}
			if len(lines) < batch {
				break
			}
		}
		if ev.Status.Done() {
			return ev, nil
		}
		select {
		case <-ctx.Done():
			return ev, ctx.Err()
		case <-woken:
		case <-time.After(pollInterval):
		}
	}
}
