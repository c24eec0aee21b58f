package store

import (
	"errors"
	"fmt"

	"github.com/berth-platform/berth/internal/model"
	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// constraint is the kind of integrity violation a write ran into.
type constraint int

const (
	noConstraint constraint = iota
	uniqueViolation
	foreignKeyViolation
)

// constraintOf tells which constraint err violates, from the engine's error
// code rather than its message, which differs between versions.
func constraintOf(err error) constraint {
	if err == nil {
		return noConstraint
	}
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		switch pgErr.Code {
		case "23505": // unique_violation
			return uniqueViolation
		case "23503": // foreign_key_violation
			return foreignKeyViolation
		}
		return noConstraint
	}
	if liteErr, ok := errors.AsType[*sqlite.Error](err); ok {
		switch liteErr.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return uniqueViolation
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return foreignKeyViolation
		}
	}
	return noConstraint
}

// notFound wraps model.ErrNotFound with what was missing, e.g.
// `component "api" in team "shop": not found`.
func notFound(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, model.ErrNotFound)...)
}

// conflict wraps model.ErrConflict with what clashed, e.g.
// `team "shop" already exists: conflict`.
func conflict(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, model.ErrConflict)...)
}

// errNil answers a nil pointer argument with an error instead of a panic.
func errNil(what string) error {
	return &model.ValidationError{Field: what, Rule: "is required (got nil)"}
}
