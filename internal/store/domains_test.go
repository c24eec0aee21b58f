package store

import (
	"errors"
	"testing"
	"time"

	"github.com/berth-platform/berth/internal/model"
)

func TestDomainClaims(t *testing.T) {
	each(t, func(t *testing.T, s Store) {
		fixture(t, s, "shop", "web", "api")
		fixture(t, s, "blog", "web", "api")
		must(t, s.ClaimDomains(bg, "blog", []string{"a.example.com"}))
		// Claiming again is a no-op for the owner.
		must(t, s.ClaimDomains(bg, "blog", []string{"a.example.com"}))

		taken := func(team, domain, owned string) {
			t.Helper()
			err := s.ClaimDomains(bg, team, []string{"free.example.org", domain})
			var dt *model.DomainTakenError
			if !errors.As(err, &dt) || !errors.Is(err, model.ErrConflict) || dt.Owned != owned || dt.Team != "blog" {
				t.Fatalf("claim %s by %s: %v", domain, team, err)
			}
		}
		taken("shop", "a.example.com", "a.example.com")
		// A wildcard over a name of another team is refused too.
		taken("shop", "*.example.com", "a.example.com")
		// All or none: the free domain of the refused claim stays free.
		if _, err := s.GetDomainClaim(bg, "free.example.org"); !errors.Is(err, model.ErrNotFound) {
			t.Fatalf("a refused claim kept part of its domains: %v", err)
		}
		must(t, s.ClaimDomains(bg, "blog", []string{"*.blog.example"}))
		taken("shop", "x.blog.example", "*.blog.example")
		must(t, s.ClaimDomains(bg, "shop", []string{"deep.x.blog.example", "b.example.com"}))

		must(t, s.PutDomainClaim(bg, &model.DomainClaim{Domain: "a.example.com", Team: "shop"}))
		c, err := s.GetDomainClaim(bg, "a.example.com")
		must(t, err)
		if c.Team != "shop" {
			t.Fatalf("reassigned claim: %+v", c)
		}
		wantErr(t, s.PutDomainClaim(bg, &model.DomainClaim{Domain: "a.example.com", Team: "nope"}), model.ErrNotFound, "")
		list, err := s.ListDomainClaims(bg)
		must(t, err)
		if len(list) != 4 {
			t.Fatalf("claims: %+v", list)
		}
		must(t, s.DeleteDomainClaim(bg, "a.example.com"))
		wantErr(t, s.DeleteDomainClaim(bg, "a.example.com"), model.ErrNotFound, "")
		// A deleted team's claims go with it.
		must(t, s.DeleteTeam(bg, "blog"))
		must(t, s.ClaimDomains(bg, "shop", []string{"x.blog.example"}))
	})
}

// Rules made before domains had owners: migration 0004 gives each domain
// to the team of its oldest rule.
func TestDomainClaimsMigrationBackfill(t *testing.T) {
	eachEngine(t, func(t *testing.T, s Store, dsn string) {
		fixture(t, s, "shop", "web", "api")
		fixture(t, s, "blog", "web", "api")
		old := time.Now().Add(-time.Hour)
		must(t, s.CreateHTTPRule(bg, &model.HTTPRule{Team: "shop", Domain: "x.example", Path: "/", Component: "api", Port: 80, Weight: 1}))
		must(t, s.CreateHTTPRule(bg, &model.HTTPRule{Team: "blog", Domain: "x.example", Path: "/", Component: "api", Port: 80, Weight: 1, CreatedAt: old}))
		must(t, s.CreateHTTPRule(bg, &model.HTTPRule{Team: "shop", Domain: "y.example", Path: "/", Component: "api", Port: 80, Weight: 1}))
		// Back to schema 3, as a server from before would have left it.
		sq := s.(*sqlStore)
		must(t, sq.tx(bg, func(h handle) error {
			if _, err := h.exec(bg, `DROP TABLE domain_claims`); err != nil {
				return err
			}
			_, err := h.exec(bg, `DELETE FROM schema_migrations WHERE version = 4`)
			return err
		}))
		must(t, s.Close())
		s2 := openTestStore(t, dsn)
		for domain, want := range map[string]string{"x.example": "blog", "y.example": "shop"} {
			c, err := s2.GetDomainClaim(bg, domain)
			must(t, err)
			if c.Team != want {
				t.Errorf("%s after the migration: %s, want %s", domain, c.Team, want)
			}
		}
	})
}
