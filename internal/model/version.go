package model

import "time"

// VersionStatus is the state of a build result.
type VersionStatus string

const (
	VersionBuilding VersionStatus = "building"
	VersionSuccess  VersionStatus = "success"
	VersionFailure  VersionStatus = "failure"
)

// Version is one build (or image) result of a component. Numbers are
// time-ordered and unique per component.
type Version struct {
	ComponentID string        `json:"-"`
	Number      int64         `json:"number"`
	Image       string        `json:"image"`
	Digest      string        `json:"digest,omitempty"`
	Commit      string        `json:"commit,omitempty"`
	Author      string        `json:"author,omitempty"`
	Message     string        `json:"message,omitempty"`
	Status      VersionStatus `json:"status"`
	EventID     string        `json:"event_id,omitempty"`
	DurationMS  int64         `json:"duration_ms,omitempty"`
	CreatedAt   time.Time     `json:"created_at"`
}
