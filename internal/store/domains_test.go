package store

import (
	"errors"
	"testing"

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
