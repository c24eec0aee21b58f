package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/berth-platform/berth/internal/model"
)

// ClaimDomains makes team the owner of every domain it does not own yet,
// or of none: a domain (or a wildcard covering it, or for a wildcard a name
// it covers) owned by another team fails with *model.DomainTakenError.
func (s *sqlStore) ClaimDomains(ctx context.Context, team string, domains []string) error {
	return s.tx(ctx, func(h handle) error {
		// Two servers on one PostgreSQL must not both see a wildcard and a
		// name under it as free; SQLite transactions exclude each other.
		if s.d.xactLock != nil {
			if err := s.d.xactLock(ctx, h, "berth.domain_claims"); err != nil {
				return err
			}
		}
		claims, err := claimsByDomain(ctx, h)
		if err != nil {
			return err
		}
		now := s.d.timeArg(storeTime(time.Now()))
		for _, d := range domains {
			if owned := model.DomainConflict(claims, team, d); owned != "" {
				return &model.DomainTakenError{Domain: d, Owned: owned, Team: claims[owned]}
			}
			if _, ok := claims[d]; ok {
				continue
			}
			_, err := h.exec(ctx, `INSERT INTO domain_claims (domain, team, created_at) VALUES (?, ?, ?)`, d, team, now)
			if constraintOf(err) == foreignKeyViolation {
				return notFound("team %q", team)
			}
			if err != nil {
				return fmt.Errorf("claim domain %s for team %q: %w", d, team, err)
			}
			claims[d] = team
		}
		return nil
	})
}

func claimsByDomain(ctx context.Context, h handle) (map[string]string, error) {
	rows, err := h.query(ctx, `SELECT domain, team, created_at FROM domain_claims`)
	cs, err := collect(rows, err, scanDomainClaim)
	if err != nil {
		return nil, fmt.Errorf("read domain claims: %w", err)
	}
	out := make(map[string]string, len(cs))
	for _, c := range cs {
		out[c.Domain] = c.Team
	}
	return out, nil
}

func scanDomainClaim(row rowScanner) (model.DomainClaim, error) {
	var c model.DomainClaim
	err := row.Scan(&c.Domain, &c.Team, timeCol{&c.CreatedAt})
	return c, err
}

// ListDomainClaims lists every claim, by domain.
func (s *sqlStore) ListDomainClaims(ctx context.Context) ([]model.DomainClaim, error) {
	rows, err := s.r().query(ctx, `SELECT domain, team, created_at FROM domain_claims ORDER BY domain`)
	cs, err := collect(rows, err, scanDomainClaim)
	if err != nil {
		return nil, fmt.Errorf("list domain claims: %w", err)
	}
	return cs, nil
}

func (s *sqlStore) GetDomainClaim(ctx context.Context, domain string) (*model.DomainClaim, error) {
	c, err := scanDomainClaim(s.r().queryRow(ctx, `SELECT domain, team, created_at FROM domain_claims WHERE domain = ?`, domain))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("claim of domain %s", domain)
	}
	if err != nil {
		return nil, fmt.Errorf("get claim of domain %s: %w", domain, err)
	}
	return &c, nil
}

// PutDomainClaim gives domain to team whoever owned it (a platform admin's
// reassignment).
func (s *sqlStore) PutDomainClaim(ctx context.Context, c *model.DomainClaim) error {
	if c == nil {
		return errNil("domain claim")
	}
	c.CreatedAt = nowOr(c.CreatedAt)
	_, err := s.w().exec(ctx, `INSERT INTO domain_claims (domain, team, created_at) VALUES (?, ?, ?)
		ON CONFLICT (domain) DO UPDATE SET team = excluded.team, created_at = excluded.created_at`,
		c.Domain, c.Team, s.d.timeArg(c.CreatedAt))
	if constraintOf(err) == foreignKeyViolation {
		return notFound("team %q", c.Team)
	}
	if err != nil {
		return fmt.Errorf("give domain %s to team %q: %w", c.Domain, c.Team, err)
	}
	return nil
}

// DeleteDomainClaim frees domain for the next team that names it.
func (s *sqlStore) DeleteDomainClaim(ctx context.Context, domain string) error {
	n, err := affected(s.w().exec(ctx, `DELETE FROM domain_claims WHERE domain = ?`, domain))
	if err != nil {
		return fmt.Errorf("release domain %s: %w", domain, err)
	}
	if n == 0 {
		return notFound("claim of domain %s", domain)
	}
	return nil
}
