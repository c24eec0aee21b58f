package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/berth-platform/berth/internal/model"
)

// CreateVersion numbers versions from the component's version_seq, the
// highest number handed out so far, rather than from the versions that
// remain: a deleted version's number (and so its image tag) is never reused.
// Bumping the counter locks the component row, which serializes concurrent
// builds of one component.
func (s *sqlStore) CreateVersion(ctx context.Context, v *model.Version) error {
	if v == nil {
		return errNil("version")
	}
	if v.Number < 0 {
		return &model.ValidationError{Field: "number", Rule: fmt.Sprintf("must not be negative (got %d)", v.Number)}
	}
	v.CreatedAt = nowOr(v.CreatedAt)
	return s.tx(ctx, func(h handle) error {
		// A given number only raises the counter, so later automatic numbers
		// stay above it. The casts keep PostgreSQL from typing the parameters
		// as int4, which time-based numbers overflow.
		row := h.queryRow(ctx, `UPDATE components SET version_seq = CASE
				WHEN CAST(? AS BIGINT) = 0 THEN version_seq + 1
				WHEN version_seq < CAST(? AS BIGINT) THEN CAST(? AS BIGINT)
				ELSE version_seq END
			WHERE id = ? RETURNING version_seq`, v.Number, v.Number, v.Number, v.ComponentID)
		var seq int64
		err := row.Scan(&seq)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("component with id %q", v.ComponentID)
		}
		if err != nil {
			return fmt.Errorf("number version of component %q: %w", v.ComponentID, err)
		}
		number := v.Number
		if number == 0 {
			number = seq
		}
		_, err = h.exec(ctx, `INSERT INTO versions
			(component_id, number, image, digest, vcs_commit, author, message, status, event_id, duration_ms, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			v.ComponentID, number, v.Image, v.Digest, v.Commit, v.Author, v.Message, string(v.Status),
			v.EventID, v.DurationMS, s.d.timeArg(v.CreatedAt))
		if constraintOf(err) == uniqueViolation {
			return conflict("version %d of component %q already exists", number, v.ComponentID)
		}
		if err != nil {
			return fmt.Errorf("create version %d of component %q: %w", number, v.ComponentID, err)
		}
		v.Number = number
		return nil
	})
}

// UpdateVersion writes everything but the key and the creation time.
func (s *sqlStore) UpdateVersion(ctx context.Context, v *model.Version) error {
	if v == nil {
		return errNil("version")
	}
	err := s.w().queryRow(ctx, `UPDATE versions SET
		image = ?, digest = ?, vcs_commit = ?, author = ?, message = ?, status = ?, event_id = ?, duration_ms = ?
		WHERE component_id = ? AND number = ? RETURNING created_at`,
		v.Image, v.Digest, v.Commit, v.Author, v.Message, string(v.Status), v.EventID, v.DurationMS,
		v.ComponentID, v.Number).Scan(timeCol{&v.CreatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return notFound("version %d of component %q", v.Number, v.ComponentID)
	}
	if err != nil {
		return fmt.Errorf("update version %d of component %q: %w", v.Number, v.ComponentID, err)
	}
	return nil
}

const versionCols = `component_id, number, image, digest, vcs_commit, author, message, status, event_id, duration_ms, created_at`

func scanVersion(row rowScanner) (model.Version, error) {
	var v model.Version
	err := row.Scan(&v.ComponentID, &v.Number, &v.Image, &v.Digest, &v.Commit, &v.Author, &v.Message,
		&v.Status, &v.EventID, &v.DurationMS, timeCol{&v.CreatedAt})
	return v, err
}

func (s *sqlStore) GetVersion(ctx context.Context, componentID string, number int64) (*model.Version, error) {
	v, err := scanVersion(s.r().queryRow(ctx, `SELECT `+versionCols+` FROM versions WHERE component_id = ? AND number = ?`, componentID, number))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("version %d of component %q", number, componentID)
	}
	if err != nil {
		return nil, fmt.Errorf("get version %d of component %q: %w", number, componentID, err)
	}
	return &v, nil
}

func (s *sqlStore) ListVersions(ctx context.Context, componentID string) ([]model.Version, error) {
	rows, err := s.r().query(ctx, `SELECT `+versionCols+` FROM versions WHERE component_id = ? ORDER BY number DESC`, componentID)
	vs, err := collect(rows, err, scanVersion)
	if err != nil {
		return nil, fmt.Errorf("list versions of component %q: %w", componentID, err)
	}
	return vs, nil
}

func (s *sqlStore) DeleteVersion(ctx context.Context, componentID string, number int64) error {
	n, err := affected(s.w().exec(ctx, `DELETE FROM versions WHERE component_id = ? AND number = ?`, componentID, number))
	if err != nil {
		return fmt.Errorf("delete version %d of component %q: %w", number, componentID, err)
	}
	if n == 0 {
		return notFound("version %d of component %q", number, componentID)
	}
	return nil
}
