package model

import (
	"errors"
	"fmt"
)

// Sentinel errors that every layer wraps, so the API can map them to HTTP
// statuses without knowing which layer failed.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	// ErrStale means an update carried an old revision: someone else wrote
	// in between. The caller reads again and retries.
	ErrStale = errors.New("stale revision")
)

// ValidationError says which field holds an invalid value and which rule it
// breaks, so the user can fix it without guessing.
type ValidationError struct {
	Field string
	Rule  string
}

func (e *ValidationError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Rule) }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Rule: fmt.Sprintf(format, args...)}
}
