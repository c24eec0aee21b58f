package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/berth-platform/berth/internal/model"
)

func (s *sqlStore) CreateApp(ctx context.Context, a *model.App) error {
	if a == nil {
		return errNil("app")
	}
	if a.ID == "" {
		a.ID = newID()
	}
	a.CreatedAt = nowOr(a.CreatedAt)
	labels, err := jsonText(a.Labels)
	if err != nil {
		return fmt.Errorf("create app %q in team %q: %w", a.Name, a.Team, err)
	}
	_, err = s.w().exec(ctx, `INSERT INTO apps (id, team, name, labels, created_at) VALUES (?, ?, ?, ?, ?)`,
		a.ID, a.Team, a.Name, labels, s.d.timeArg(a.CreatedAt))
	switch constraintOf(err) {
	case uniqueViolation:
		return conflict("app %q in team %q already exists", a.Name, a.Team)
	case foreignKeyViolation:
		return notFound("team %q", a.Team)
	}
	if err != nil {
		return fmt.Errorf("create app %q in team %q: %w", a.Name, a.Team, err)
	}
	return nil
}

const appCols = `id, team, name, labels, created_at`

func scanApp(row rowScanner) (model.App, error) {
	var a model.App
	err := row.Scan(&a.ID, &a.Team, &a.Name, jsonCol{&a.Labels}, timeCol{&a.CreatedAt})
	return a, err
}

func (s *sqlStore) GetApp(ctx context.Context, team, name string) (*model.App, error) {
	a, err := scanApp(s.r().queryRow(ctx, `SELECT `+appCols+` FROM apps WHERE team = ? AND name = ?`, team, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("app %q in team %q", name, team)
	}
	if err != nil {
		return nil, fmt.Errorf("get app %q in team %q: %w", name, team, err)
	}
	return &a, nil
}

func (s *sqlStore) ListApps(ctx context.Context, team string) ([]model.App, error) {
	rows, err := s.r().query(ctx, `SELECT `+appCols+` FROM apps WHERE team = ? ORDER BY name`, team)
	as, err := collect(rows, err, scanApp)
	if err != nil {
		return nil, fmt.Errorf("list apps of team %q: %w", team, err)
	}
	return as, nil
}

// UpdateApp writes the labels of the app named by a.Team and a.Name, the
// only mutable part: components refer to the app by name.
func (s *sqlStore) UpdateApp(ctx context.Context, a *model.App) error {
	if a == nil {
		return errNil("app")
	}
	labels, err := jsonText(a.Labels)
	if err != nil {
		return fmt.Errorf("update app %q in team %q: %w", a.Name, a.Team, err)
	}
	err = s.w().queryRow(ctx, `UPDATE apps SET labels = ? WHERE team = ? AND name = ? RETURNING id, created_at`,
		labels, a.Team, a.Name).Scan(&a.ID, timeCol{&a.CreatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return notFound("app %q in team %q", a.Name, a.Team)
	}
	if err != nil {
		return fmt.Errorf("update app %q in team %q: %w", a.Name, a.Team, err)
	}
	return nil
}

// DeleteApp lets the components' foreign key to their app refuse the
// delete, which also holds against a component created concurrently.
func (s *sqlStore) DeleteApp(ctx context.Context, team, name string) error {
	n, err := affected(s.w().exec(ctx, `DELETE FROM apps WHERE team = ? AND name = ?`, team, name))
	if constraintOf(err) == foreignKeyViolation {
		return conflict("app %q in team %q still has components", name, team)
	}
	if err != nil {
		return fmt.Errorf("delete app %q in team %q: %w", name, team, err)
	}
	if n == 0 {
		return notFound("app %q in team %q", name, team)
	}
	return nil
}
