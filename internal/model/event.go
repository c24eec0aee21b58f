package model

import (
	"encoding/json"
	"time"
)

// EventStatus is the state of one operation.
type EventStatus string

const (
	EventRunning EventStatus = "running"
	EventSuccess EventStatus = "success"
	EventFailure EventStatus = "failure"
)

// Done reports whether the event has ended.
func (s EventStatus) Done() bool { return s == EventSuccess || s == EventFailure }

// Event is one operation (build, deploy, start, stop, scale...) and the
// handle a caller follows its log by.
type Event struct {
	ID         string      `json:"id"`
	Team       string      `json:"team,omitempty"`
	Type       string      `json:"type"`
	Target     string      `json:"target"` // e.g. "component:shop/web/api"
	Status     EventStatus `json:"status"`
	Reason     string      `json:"reason,omitempty"`
	Message    string      `json:"message,omitempty"`
	CreatedAt  time.Time   `json:"created_at"`
	StartedAt  *time.Time  `json:"started_at,omitempty"`
	FinishedAt *time.Time  `json:"finished_at,omitempty"`
}

// LogLine is one line of an event's log. Seq starts at 1 and has no gaps
// within an event, so a follower can resume after the last seq it saw.
type LogLine struct {
	Seq   int64     `json:"seq"`
	Time  time.Time `json:"time"`
	Level string    `json:"level,omitempty"` // info, warn, error
	Stage string    `json:"stage,omitempty"`
	Text  string    `json:"text"`
}

// EventFilter selects events for a listing.
type EventFilter struct {
	Team string // "" means every team (admin only)
	// Since keeps events created at or after it: a team sees nothing of an
	// earlier, deleted team of the same name.
	Since  time.Time
	Target string // prefix match
	Status EventStatus
	Limit  int
}

// TaskStatus is the state of a durable task.
type TaskStatus string

const (
	TaskQueued  TaskStatus = "queued"
	TaskRunning TaskStatus = "running"
	TaskSuccess TaskStatus = "success"
	TaskFailure TaskStatus = "failure"
)

// Task is a unit of work that outlives the server: a row claimed by a worker
// with a lease. Tasks for one target run one at a time, oldest first.
type Task struct {
	ID         string          `json:"id"`
	EventID    string          `json:"event_id"`
	Type       string          `json:"type"`
	Team       string          `json:"team"`
	Target     string          `json:"target"`
	Payload    json.RawMessage `json:"payload,omitempty"`
	Status     TaskStatus      `json:"status"`
	Attempts   int             `json:"attempts"`
	Owner      string          `json:"owner,omitempty"`
	LeaseUntil *time.Time      `json:"lease_until,omitempty"`
	Error      string          `json:"error,omitempty"`
	CreatedAt  time.Time       `json:"created_at"`
	UpdatedAt  time.Time       `json:"updated_at"`
}
