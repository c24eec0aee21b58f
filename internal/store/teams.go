package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/berth-platform/berth/internal/model"
)

func (s *sqlStore) CreateTeam(ctx context.Context, t *model.Team) error {
	if t == nil {
		return errNil("team")
	}
	if t.ID == "" {
		t.ID = newID()
	}
	t.CreatedAt = nowOr(t.CreatedAt)
	_, err := s.w().exec(ctx, `INSERT INTO teams (id, name, created_at) VALUES (?, ?, ?)`,
		t.ID, t.Name, s.d.timeArg(t.CreatedAt))
	switch {
	case constraintOf(err) == uniqueViolation:
		return conflict("team %q already exists", t.Name)
	case err != nil:
		return fmt.Errorf("create team %q: %w", t.Name, err)
	}
	return nil
}

const teamCols = `id, name, created_at`

func scanTeam(row rowScanner) (model.Team, error) {
	var t model.Team
	err := row.Scan(&t.ID, &t.Name, timeCol{&t.CreatedAt})
	return t, err
}

func (s *sqlStore) GetTeam(ctx context.Context, name string) (*model.Team, error) {
	t, err := scanTeam(s.r().queryRow(ctx, `SELECT `+teamCols+` FROM teams WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("team %q", name)
	}
	if err != nil {
		return nil, fmt.Errorf("get team %q: %w", name, err)
	}
	return &t, nil
}

func (s *sqlStore) ListTeams(ctx context.Context) ([]model.Team, error) {
	rows, err := s.r().query(ctx, `SELECT `+teamCols+` FROM teams ORDER BY name`)
	ts, err := collect(rows, err, scanTeam)
	if err != nil {
		return nil, fmt.Errorf("list teams: %w", err)
	}
	return ts, nil
}

// DeleteTeam relies on ON DELETE CASCADE for what the team owns, except
// components: they also reference their app, and deleting them first keeps
// that check out of the cascade, whose order differs between engines.
func (s *sqlStore) DeleteTeam(ctx context.Context, name string) error {
	return s.tx(ctx, func(h handle) error {
		if _, err := h.exec(ctx, `DELETE FROM components WHERE team = ?`, name); err != nil {
			return fmt.Errorf("delete components of team %q: %w", name, err)
		}
		n, err := affected(h.exec(ctx, `DELETE FROM teams WHERE name = ?`, name))
		if err != nil {
			return fmt.Errorf("delete team %q: %w", name, err)
		}
		if n == 0 {
			return notFound("team %q", name)
		}
		return nil
	})
}

func (s *sqlStore) PutMember(ctx context.Context, m *model.Member) error {
	if m == nil {
		return errNil("member")
	}
	m.CreatedAt = nowOr(m.CreatedAt)
	// A member keeps the creation time of its first insert; only the role
	// changes.
	err := s.w().queryRow(ctx, `INSERT INTO members (team, name, role, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (team, name) DO UPDATE SET role = excluded.role
		RETURNING created_at`,
		m.Team, m.Name, string(m.Role), s.d.timeArg(m.CreatedAt)).Scan(timeCol{&m.CreatedAt})
	switch {
	case constraintOf(err) == foreignKeyViolation:
		return notFound("team %q", m.Team)
	case err != nil:
		return fmt.Errorf("put member %q in team %q: %w", m.Name, m.Team, err)
	}
	return nil
}

const memberCols = `team, name, role, created_at`

func scanMember(row rowScanner) (model.Member, error) {
	var m model.Member
	err := row.Scan(&m.Team, &m.Name, &m.Role, timeCol{&m.CreatedAt})
	return m, err
}

func (s *sqlStore) GetMember(ctx context.Context, team, name string) (*model.Member, error) {
	m, err := scanMember(s.r().queryRow(ctx, `SELECT `+memberCols+` FROM members WHERE team = ? AND name = ?`, team, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("member %q in team %q", name, team)
	}
	if err != nil {
		return nil, fmt.Errorf("get member %q in team %q: %w", name, team, err)
	}
	return &m, nil
}

func (s *sqlStore) ListMembers(ctx context.Context, team string) ([]model.Member, error) {
	rows, err := s.r().query(ctx, `SELECT `+memberCols+` FROM members WHERE team = ? ORDER BY name`, team)
	ms, err := collect(rows, err, scanMember)
	if err != nil {
		return nil, fmt.Errorf("list members of team %q: %w", team, err)
	}
	return ms, nil
}

// DeleteMember leaves the member's tokens to the (team, member) foreign key.
func (s *sqlStore) DeleteMember(ctx context.Context, team, name string) error {
	n, err := affected(s.w().exec(ctx, `DELETE FROM members WHERE team = ? AND name = ?`, team, name))
	if err != nil {
		return fmt.Errorf("delete member %q in team %q: %w", name, team, err)
	}
	if n == 0 {
		return notFound("member %q in team %q", name, team)
	}
	return nil
}

// nullIfEmpty stores "" as NULL, for columns where NULL means "none" to a
// foreign key (a token's team and member).
func nullIfEmpty(v string) any {
	if v == "" {
		return nil
	}
	return v
}

func (s *sqlStore) CreateToken(ctx context.Context, t *model.Token) error {
	if t == nil {
		return errNil("token")
	}
	if t.ID == "" {
		t.ID = newID()
	}
	t.CreatedAt = nowOr(t.CreatedAt)
	t.LastUsedAt = storeTimePtr(t.LastUsedAt)
	_, err := s.w().exec(ctx, `INSERT INTO tokens
		(id, name, team, member, role, admin, hash, created_at, last_used_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.Name, nullIfEmpty(t.Team), nullIfEmpty(t.Member), string(t.Role), t.Admin, t.Hash,
		s.d.timeArg(t.CreatedAt), s.d.nullTimeArg(t.LastUsedAt))
	switch {
	case constraintOf(err) == uniqueViolation:
		// Never name the hash: it is as good as the secret for a lookup.
		return conflict("token %q (or its secret) already exists", t.Name)
	case constraintOf(err) == foreignKeyViolation && t.Member != "":
		return notFound("member %q in team %q", t.Member, t.Team)
	case constraintOf(err) == foreignKeyViolation:
		return notFound("team %q", t.Team)
	case err != nil:
		return fmt.Errorf("create token %q: %w", t.Name, err)
	}
	return nil
}

const tokenCols = `id, name, COALESCE(team, ''), COALESCE(member, ''), role, admin, hash, created_at, last_used_at`

func scanToken(row rowScanner) (model.Token, error) {
	var t model.Token
	err := row.Scan(&t.ID, &t.Name, &t.Team, &t.Member, &t.Role, &t.Admin, &t.Hash,
		timeCol{&t.CreatedAt}, nullTimeCol{&t.LastUsedAt})
	return t, err
}

func (s *sqlStore) GetTokenByHash(ctx context.Context, hash string) (*model.Token, error) {
	t, err := scanToken(s.r().queryRow(ctx, `SELECT `+tokenCols+` FROM tokens WHERE hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("token")
	}
	if err != nil {
		return nil, fmt.Errorf("get token: %w", err)
	}
	return &t, nil
}

// ListTokens lists the tokens of a team; team "" lists the tokens that
// belong to no team, such as the admin token.
func (s *sqlStore) ListTokens(ctx context.Context, team string) ([]model.Token, error) {
	rows, err := s.r().query(ctx, `SELECT `+tokenCols+` FROM tokens WHERE COALESCE(team, '') = ? ORDER BY name, id`, team)
	ts, err := collect(rows, err, scanToken)
	if err != nil {
		return nil, fmt.Errorf("list tokens of team %q: %w", team, err)
	}
	return ts, nil
}

// DeleteToken deletes a token of team; team "" names the tokens of no team.
func (s *sqlStore) DeleteToken(ctx context.Context, team, id string) error {
	n, err := affected(s.w().exec(ctx, `DELETE FROM tokens WHERE id = ? AND COALESCE(team, '') = ?`, id, team))
	if err != nil {
		return fmt.Errorf("delete token %q: %w", id, err)
	}
	if n == 0 {
		return notFound("token %q in team %q", id, team)
	}
	return nil
}

func (s *sqlStore) TouchToken(ctx context.Context, id string, at time.Time) error {
	n, err := affected(s.w().exec(ctx, `UPDATE tokens SET last_used_at = ? WHERE id = ?`, s.d.timeArg(storeTime(at)), id))
	if err != nil {
		return fmt.Errorf("touch token %q: %w", id, err)
	}
	if n == 0 {
		return notFound("token %q", id)
	}
	return nil
}
