package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/berth-platform/berth/internal/model"
)

func (s *sqlStore) PutRegistry(ctx context.Context, r *model.Registry) error {
	if r == nil {
		return errNil("registry")
	}
	r.CreatedAt = nowOr(r.CreatedAt)
	password, err := s.keys.seal(r.Password)
	if err != nil {
		return fmt.Errorf("put registry %q in team %q: %w", r.Host, r.Team, err)
	}
	_, err = s.w().exec(ctx, `INSERT INTO registries (team, host, username, password, skip_verify, plain_http, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (team, host) DO UPDATE SET username = excluded.username, password = excluded.password,
			skip_verify = excluded.skip_verify, plain_http = excluded.plain_http`,
		r.Team, r.Host, r.Username, password, r.SkipVerify, r.PlainHTTP, s.d.timeArg(r.CreatedAt))
	if constraintOf(err) == foreignKeyViolation {
		return notFound("team %q", r.Team)
	}
	if err != nil {
		return fmt.Errorf("put registry %q in team %q: %w", r.Host, r.Team, err)
	}
	return nil
}

const registryCols = `team, host, username, password, skip_verify, plain_http, created_at`

// scanRegistry reads a registry row, its password opened.
func (s *sqlStore) scanRegistry(row rowScanner) (model.Registry, error) {
	var r model.Registry
	err := row.Scan(&r.Team, &r.Host, &r.Username, &r.Password, &r.SkipVerify, &r.PlainHTTP, timeCol{&r.CreatedAt})
	if err != nil {
		return r, err
	}
	if r.Password, err = s.keys.open(r.Password); err != nil {
		return r, fmt.Errorf("registry %q of team %q: %w", r.Host, r.Team, err)
	}
	return r, nil
}

func (s *sqlStore) GetRegistry(ctx context.Context, team, host string) (*model.Registry, error) {
	r, err := s.scanRegistry(s.r().queryRow(ctx, `SELECT `+registryCols+` FROM registries WHERE team = ? AND host = ?`, team, host))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("registry %q in team %q", host, team)
	}
	if err != nil {
		return nil, fmt.Errorf("get registry %q in team %q: %w", host, team, err)
	}
	return &r, nil
}

func (s *sqlStore) ListRegistries(ctx context.Context, team string) ([]model.Registry, error) {
	rows, err := s.r().query(ctx, `SELECT `+registryCols+` FROM registries WHERE team = ? ORDER BY host`, team)
	rs, err := collect(rows, err, s.scanRegistry)
	if err != nil {
		return nil, fmt.Errorf("list registries of team %q: %w", team, err)
	}
	return rs, nil
}

func (s *sqlStore) DeleteRegistry(ctx context.Context, team, host string) error {
	n, err := affected(s.w().exec(ctx, `DELETE FROM registries WHERE team = ? AND host = ?`, team, host))
	if err != nil {
		return fmt.Errorf("delete registry %q in team %q: %w", host, team, err)
	}
	if n == 0 {
		return notFound("registry %q in team %q", host, team)
	}
	return nil
}
